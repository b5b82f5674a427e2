// What a worker reports is input too (issue 11): an outcome the run record
// cannot hold must end the run with a clear error, never break the embedded
// database, stop the event materializer, or leave the run RUNNING for ever.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ERROR_STACK } from "@offload/sdk/internal";
import { call, NatsProbe } from "../api/helpers.js";
import { startStack, waitFor, type Stack } from "../support/index.js";

const nested = (depth: number, inner = "1"): string => "[".repeat(depth) + inner + "]".repeat(depth);

describe("run events the run record cannot hold, on PGlite", () => {
  let stack: Stack;
  let probe: NatsProbe;
  const task = "robust-events";

  beforeAll(async () => {
    stack = await startStack({ db: "pglite" });
    probe = await NatsProbe.connect(stack.nats.url);
  });
  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    await stack?.stop();
  });

  /** A new run of the task, RUNNING on attempt 1 as a worker would report it. */
  const running = async (): Promise<string> => {
    const made = await call(stack.apiUrl, "POST", "/v1/runs", { task });
    expect(made.status).toBe(202);
    const runId = made.body.id as string;
    await probe.publishEvent({ runId, task, type: "RUNNING" });
    await waitFor(`run ${runId} RUNNING`, async () => (await call(stack.apiUrl, "GET", `/v1/runs/${runId}`)).body.state === "RUNNING");
    return runId;
  };
  /** The event of a worker, written by hand, so that nothing on the way re-encodes or recurses into it. */
  const rawEvent = (runId: string, type: string, rest: string): Promise<void> =>
    probe.publishRawEvent(task, `{"runId":"${runId}","task":"${task}","type":"${type}","attempt":1,"workerId":"w","at":"${new Date().toISOString()}",${rest}}`);
  const settled = (runId: string) =>
    waitFor(`run ${runId} to finish`, async () => {
      const run = (await call(stack.apiUrl, "GET", `/v1/runs/${runId}`)).body;
      return ["COMPLETED", "FAILED"].includes(run.state) ? run : undefined;
    });

  it("fails a run whose result is too deep or holds unstorable text, and keeps materializing", async () => {
    for (const [what, result] of [
      ["nested 1,000 deep (breaks PGlite)", nested(1000)],
      ["nested 100,000 deep (overflows a recursive validator)", nested(100_000)],
      ["with a lone surrogate", '{"k":"\\ud800"}'],
      ["with U+0000 in a key", '{"a\\u0000":1}'],
    ] as const) {
      const runId = await running();
      await rawEvent(runId, "COMPLETED", `"result":${result}`);
      const run = await settled(runId);
      expect(run.state, what).toBe("FAILED");
      expect(run.error.type, what).toBe("ResultNotStorable");
      expect(run.error.message, what).toMatch(/cannot be stored/);
    }
    // A result at the bound is stored as it came.
    const runId = await running();
    await rawEvent(runId, "COMPLETED", `"result":${nested(64)}`);
    const run = await settled(runId);
    expect(run.state).toBe("COMPLETED");
    expect(JSON.stringify(run.result)).toBe(nested(64));
    expect((await call(stack.apiUrl, "GET", "/readyz")).status).toBe(200);
  });

  it("fails the run of a batch entry whose result it cannot hold, and records the batch's other entries", async () => {
    const [deep, fine] = [await running(), await running()];
    const entry = (runId: string, rest: string): string =>
      `{"runId":"${runId}","task":"${task}","type":"COMPLETED","attempt":1,"workerId":"w","at":"${new Date().toISOString()}",${rest}}`;
    // Written by hand, as rawEvent: a worker's batch whose first entry nests 100,000 deep.
    await probe.publishRawEvent(task, `{"events":[${entry(deep, `"result":${nested(100_000)}`)},${entry(fine, `"result":{"ok":true}`)}]}`);
    expect(await settled(deep)).toMatchObject({ state: "FAILED", error: { type: "ResultNotStorable" } });
    expect(await settled(fine)).toMatchObject({ state: "COMPLETED", result: { ok: true } });
  });

  it("stores a failure whose message holds U+0000 or a lone surrogate, with those replaced", async () => {
    const runId = await running();
    await rawEvent(runId, "FAILED", `"error":{"type":"Bad\\u0000Error","message":"half \\ud800 a pair"}`);
    const run = await settled(runId);
    expect(run.state).toBe("FAILED");
    expect(run.error).toEqual({ type: "Bad\uFFFDError", message: "half \uFFFD a pair" });
  });

  it("stores a failure's stack storable and cut to the bound, however long the worker sent it", async () => {
    const runId = await running();
    const frames = Array.from({ length: 1000 }, (_, i) => `    at step${i} (file:///app/tasks.js:${i}:1)`);
    const stack = ["Error: bad \u0000 and \ud800", ...frames].join("\n");
    await rawEvent(runId, "FAILED", `"error":${JSON.stringify({ type: "Error", message: "bad", stack })}`);
    const run = await settled(runId);
    expect(run.state).toBe("FAILED");
    expect(run.error).toMatchObject({ type: "Error", message: "bad" });
    const kept = run.error.stack as string;
    expect(kept.length).toBeLessThanOrEqual(MAX_ERROR_STACK);
    expect(kept.split("\n").slice(0, 2)).toEqual(["Error: bad \uFFFD and \uFFFD", frames[0]]);
    expect(kept).toMatch(new RegExp(`\\n {4}… \\(the stack was ${stack.length} characters: cut to ${MAX_ERROR_STACK}\\)$`));
  });
});
