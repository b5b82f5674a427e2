// ctx.progress(...) through the real parts: a worker process, nats-server, the run API process and PostgreSQL.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { setDefaultClient } from "@offload/sdk";
import { Nats, RunEventBatchSchema, RunProgressEventSchema, RunProgressMessageSchema, RunSchema, type RunProgressMessage } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSse, type SseEvent } from "../api/helpers.js";
import { killAll, startStack, stopSharedPostgres, waitFor, waitForRun, type Stack } from "../support/index.js";
import { flood, steps } from "./fixtures/tasks.mjs";

const FIXTURES = new URL("./fixtures/tasks.mjs", import.meta.url).pathname;
// The worker's coalescing interval (PROGRESS_INTERVAL_MS in sdk/src/serve/progress.ts).
const INTERVAL_MS = 250;

describe("progress from a running task", () => {
  let stack: Stack | undefined;
  let nc: NatsConnection | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-progress-"));
    stack = await startStack();
    await stack.startWorker({ module: FIXTURES, concurrency: 2 });
    setDefaultClient(stack.client);
    nc = await connect({ servers: stack.nats.url });
  });
  afterAll(async () => {
    setDefaultClient(undefined);
    await nc?.close();
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("is seen by run.status(), GET /v1/runs/:id and the events stream while the task runs, and the last report stays", async () => {
    const runDir = await mkdtemp(join(dir, "steps-"));
    // The stream of every run's changes (the dashboard's), open before the run exists.
    const all: SseEvent[] = [];
    const stopAll = new AbortController();
    const allStream = readSse(`${stack!.apiUrl}/v1/events?task=progress-steps`, (e) => void all.push(e), stopAll.signal).catch(() => undefined);
    const run = await steps.delay({ dir: runDir });
    const events: SseEvent[] = [];
    let sawHalf!: () => void;
    const half = new Promise<void>((resolve) => (sawHalf = resolve));
    const stream = readSse(`${stack!.apiUrl}/v1/runs/${run.id}/events`, (e) => {
      events.push(e);
      if (e.event === "progress" && RunProgressEventSchema.parse(JSON.parse(e.data)).progress.done === 1) sawHalf();
    });

    // The task waits for its release file: everything below is seen while it runs.
    await half;
    const running = await run.status();
    expect(running.state).toBe("RUNNING");
    expect(running.progress).toMatchObject({ value: 0.5, done: 1, total: 2, message: "resized 1 of 2" });
    expect(Number.isNaN(Date.parse(running.progress!.updatedAt))).toBe(false);
    const raw = await fetch(`${stack!.apiUrl}/v1/runs/${run.id}`);
    expect(raw.status).toBe(200);
    expect(RunSchema.parse(await raw.json()).progress).toEqual(running.progress);

    const fromAll = await waitFor("a progress event on GET /v1/events", () =>
      all.filter((e) => e.event === "progress").map((e) => RunProgressEventSchema.parse(JSON.parse(e.data))).find((p) => p.runId === run.id),
    );
    expect(fromAll.progress).toEqual(running.progress);
    stopAll.abort();
    await allStream;

    await writeFile(join(runDir, "release"), "");
    const result = await run.result({ timeoutSeconds: 30 });
    // Bad reports threw typed errors in the task, and the run went on.
    expect(result.thrown).toHaveLength(3);
    for (const t of result.thrown) expect(t).toMatchObject({ name: "InvalidProgressError", code: "OFFLOAD_PROGRESS" });
    expect(result.thrown[0]!.message).toMatch(/value must be a finite number from 0 to 1, not 1\.5/);
    expect(result.thrown[1]!.message).toMatch(/done \(3\) must not exceed total \(2\)/);

    const { status } = await stream;
    expect(status).toBe(200);
    const done = await run.status();
    expect(done.state).toBe("COMPLETED");
    expect(done.progress).toMatchObject({ value: 1, done: 2, total: 2, message: "resized 2 of 2" });
    // On the stream: the first report, then the last one before the terminal state that ends it.
    const progressEvents = events.filter((e) => e.event === "progress").map((e) => RunProgressEventSchema.parse(JSON.parse(e.data)));
    expect(progressEvents.map((p) => p.progress.done)).toEqual([1, 2]);
    expect(progressEvents.every((p) => p.runId === run.id)).toBe(true);
    expect(events.at(-1)?.event).toBe("state");
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ state: "COMPLETED" });
    expect(events.findIndex((e) => e.event === "progress" && e.data.includes('"done":2'))).toBe(events.length - 2);
  });

  it("coalesces a tight loop of 100,000 reports into a few messages, the last one always delivered", async () => {
    const seen: RunProgressMessage[] = [];
    // A core subscription sees what the worker publishes on the events subject (JetStream stores the same
    // messages), a report alone or in a batch with other events.
    const sub = nc!.subscribe(Nats.eventSubject("progress-flood"), {
      callback: (_err, msg) => {
        const data: unknown = msg.json();
        const batch = RunEventBatchSchema.safeParse(data);
        for (const entry of batch.success ? batch.data.events : [data]) {
          const parsed = RunProgressMessageSchema.safeParse(entry);
          if (parsed.success) seen.push(parsed.data);
        }
      },
    });
    await nc!.flush();
    try {
      const run = await flood.delay({ calls: 100_000 });
      const { calls, ms } = await run.result({ timeoutSeconds: 60 });
      expect(calls).toBe(100_000);
      const final = await waitForRun(() => run.status(), (r) => r.progress?.value === 1, "the last report on the run");
      expect(final.progress).toMatchObject({ value: 1, message: "step 100000" });
      await nc!.flush();
      const mine = seen.filter((m) => m.runId === run.id);
      // One at once, then at most one per interval while the loop ran, and the last one at the end.
      expect(mine.length).toBeGreaterThanOrEqual(1);
      expect(mine.length).toBeLessThanOrEqual(Math.ceil(ms / INTERVAL_MS) + 2);
      expect(mine.at(-1)!.progress).toMatchObject({ value: 1, message: "step 100000" });
      // Newest last, each newer than the one before: the API keeps the newest.
      const times = mine.map((m) => Date.parse(m.progress.updatedAt));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(new Set(times).size).toBe(times.length);
    } finally {
      sub.unsubscribe();
    }
  });

  it("ignores a report that arrives after the run ended", async () => {
    const run = await flood.delay({ calls: 10 });
    await run.result({ timeoutSeconds: 30 });
    // A run this short ends before its RUNNING delay: its first report announced it RUNNING, or the API would have dropped it.
    const before = await waitForRun(() => run.status(), (r) => r.progress?.value === 1, "the last report on the run");
    const ignoredBefore = await ignoredProgress(stack!.apiUrl);
    // A straggler: the same worker and attempt, newer than anything stored, after the outcome.
    const late: RunProgressMessage = {
      runId: run.id,
      task: "progress-flood",
      type: "PROGRESS",
      attempt: before.attempts,
      workerId: before.workerId!,
      progress: { value: 0.1, message: "late", updatedAt: new Date(Date.now() + 60_000).toISOString() },
    };
    await nc!.request(Nats.eventSubject("progress-flood"), JSON.stringify(late));
    await waitFor("the API to handle the late report", async () => (await ignoredProgress(stack!.apiUrl)) > ignoredBefore, 15_000);
    expect((await run.status()).progress).toEqual(before.progress);
  });
});

/** How many progress reports the API handled without changing a run (offload_run_events_total). */
async function ignoredProgress(apiUrl: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("offload_run_events_total{") && l.includes('type="PROGRESS"') && l.includes('applied="false"'));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
