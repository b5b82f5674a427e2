import { afterAll, afterEach, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { killAll, startStack, stopSharedPostgres, waitFor, waitForRun, type Stack } from "../support/index.js";

const FIXTURES = join(import.meta.dirname, "fixtures/tasks.mjs");

/** Terminal events published for `runId` on the events stream. */
async function terminalEvents(natsUrl: string, runId: string): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("OFFLOAD_EVENTS");
    const types: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage("OFFLOAD_EVENTS", { seq }).catch(() => null);
      if (!m) continue;
      const e = m.json<{ runId: string; type: string }>();
      if (e.runId === runId && ["COMPLETED", "FAILED", "CANCELLED"].includes(e.type)) types.push(e.type);
    }
    return types;
  } finally {
    await nc.close();
  }
}

describe("failures along a run's way", () => {
  let stack: Stack | undefined;
  let markers: string;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
    if (markers) await rm(markers, { recursive: true, force: true });
  });
  afterAll(async () => {
    await stopSharedPostgres();
    await killAll();
  });

  it("a worker killed with SIGKILL mid-run: the run completes on the other worker, attempts 2, one outcome", async () => {
    stack = await startStack();
    markers = await mkdtemp(join(tmpdir(), "offload-markers-"));
    // A short ack wait so that the dead worker's message comes back quickly.
    const env = { OFFLOAD_ACK_WAIT_SECONDS: "2" };
    const a = await stack.startWorker({ module: FIXTURES, env });
    const b = await stack.startWorker({ module: FIXTURES, env });

    const run = await stack.client.createRun({ task: "slow", parameters: { ms: 1500, markerDir: markers } });
    const first = await waitFor("the first attempt to start", async () => (await readdir(markers)).find((f) => f === `${run.id}.1`));
    const pid = Number(await readFile(join(markers, first), "utf8"));
    const victim = [a, b].find((w) => w.child.proc.pid === pid)!;
    const survivor = [a, b].find((w) => w !== victim)!;
    expect(victim).toBeDefined();
    victim.child.kill("SIGKILL");
    await victim.child.exited;

    const done = await waitForRun(() => stack!.client.getRun(run.id), (r) => r.state === "COMPLETED", "the run to complete", 45_000);
    expect(done.attempts).toBe(2);
    expect(done.result).toEqual({ pid: survivor.child.proc.pid, attempt: 2 });
    expect(await terminalEvents(stack.nats.url, run.id)).toEqual(["COMPLETED"]);
  });

  it("SIGTERM on a worker with runs in flight: they finish, it exits 0, none is left RUNNING", async () => {
    stack = await startStack();
    markers = await mkdtemp(join(tmpdir(), "offload-markers-"));
    const w = await stack.startWorker({ module: FIXTURES, concurrency: 4 });
    const runs = await stack.client.createRuns(Array.from({ length: 4 }, () => ({ task: "slow", parameters: { ms: 2000, markerDir: markers } })));
    await waitFor("all four runs to start", async () => ((await readdir(markers)).length === 4 ? true : undefined));

    w.child.kill("SIGTERM");
    expect(await w.child.exited).toBe(0);

    for (const r of runs) {
      const rec = await waitForRun(() => stack!.client.getRun(r.id), (x) => x.state === "COMPLETED", `run ${r.id} to be recorded COMPLETED`);
      expect(rec.attempts).toBe(1);
    }
    const running = await stack.client.listRuns({ state: "RUNNING" });
    expect(running.runs).toEqual([]);
  });

  it("the API killed between recording and publishing: after restart the run is published and completes once", async () => {
    stack = await startStack({ apiEnv: { OFFLOAD_REPUBLISH_AFTER_SECONDS: "1" } });
    await stack.startWorker({ module: FIXTURES });
    await stack.api.stop();
    await stack.startApi({ OFFLOAD_TEST_FAULT: "exit-after-record" });

    await expect(stack.client.createRun({ task: "add", parameters: { a: 20, b: 22 }, idempotencyKey: "crash-1" })).rejects.toThrow();
    expect(await stack.api.exited).not.toBe(0);

    await stack.startApi();
    const page = await waitFor("the recorded run to be listed", async () => {
      const p = await stack!.client.listRuns({ task: "add" });
      return p.runs.length ? p : undefined;
    });
    expect(page.runs).toHaveLength(1);
    const id = page.runs[0]!.id;
    const done = await waitForRun(() => stack!.client.getRun(id), (r) => r.state === "COMPLETED", "the run to complete after restart");
    expect(done).toMatchObject({ attempts: 1, idempotencyKey: "crash-1" });
    expect((done.result as { sum: number }).sum).toBe(42);
    expect(await terminalEvents(stack.nats.url, id)).toEqual(["COMPLETED"]);
  });
});
