import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { HeartbeatSchema, Nats } from "@offload/sdk/internal";
import { killAll, startNats, waitFor, type NatsServer } from "../support/index.js";
import { openBus, startWorker, type Bus, type WorkerProcess } from "./helpers.js";

// One worker process (concurrency 3) serving the fixture module, driven by
// task messages published straight to JetStream.
describe("offload-worker: runs", () => {
  let nats: NatsServer;
  let bus: Bus;
  let worker: WorkerProcess;
  let dir: string;
  const callsFile = (): string => join(dir, "calls.txt");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-worker-test-"));
    nats = await startNats();
    bus = await openBus(nats.url);
    worker = await startWorker(nats.url, ["--concurrency", "3"], { FIXTURE_CALLS_FILE: callsFile(), OFFLOAD_DRAIN_SECONDS: "20" });
  });
  afterAll(async () => {
    await worker?.child.stop(5000);
    await bus?.close();
    await nats?.stop();
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs a task shorter than the RUNNING delay: only COMPLETED, with the result and when it started", async () => {
    const before = Date.now();
    const runId = await bus.dispatch("add", { a: 2, b: 3 });
    const done = await bus.outcome(runId);
    expect(done.type).toBe("COMPLETED");
    expect(done.result).toMatchObject({ sum: 5, attempt: 1 });
    expect(done).toMatchObject({ task: "add", attempt: 1 });
    // Folded into the outcome: a watcher sees PENDING, then COMPLETED, and the record still gets its start.
    expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["COMPLETED"]);
    expect(Date.parse(done.startedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(done.startedAt!)).toBeLessThanOrEqual(Date.parse(done.at));
    expect((done.result as { workerId: string }).workerId).toBe(done.workerId);
  });

  it("a run that outlives the RUNNING delay shows RUNNING while it runs, then its outcome with the same start", async () => {
    const runId = await bus.dispatch("slow", { ms: 1500 });
    const running = await bus.event(runId, "RUNNING");
    // Seen while the run still runs: its outcome is not there yet.
    expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["RUNNING"]);
    const done = await bus.outcome(runId);
    expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["RUNNING", "COMPLETED"]);
    expect(running).toMatchObject({ task: "slow", attempt: 1, workerId: done.workerId });
    expect(done.startedAt).toBe(running.at);
  });

  it("creates the streams and a shared durable consumer per task", async () => {
    const jsm = await jetstreamManager(bus.nc);
    const tasks = await jsm.streams.info(Nats.tasksStream);
    expect(tasks.config).toMatchObject({ retention: "workqueue", storage: "file", subjects: [Nats.tasksWildcard] });
    const consumer = await jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer("add"));
    expect(consumer.config).toMatchObject({ filter_subject: Nats.taskSubject("add"), ack_policy: "explicit", durable_name: Nats.taskConsumer("add") });
  });

  it("publishes FAILED with the error's type, message and stack when the task throws", async () => {
    const runId = await bus.dispatch("boom", { message: "it broke" });
    const done = await bus.outcome(runId);
    expect(done.type).toBe("FAILED");
    expect(done.error).toMatchObject({ type: "BoomError", message: "it broke" });
    // The top frame is the task's own function in the user's module.
    expect(done.error?.stack).toMatch(/^BoomError: it broke\n\s+at .*fixtures\/tasks\.mjs:\d+:\d+/);
  });

  it("fails invalid parameters with InputValidationError naming the field, without calling the task", async () => {
    const runId = await bus.dispatch("strict", { count: "many" });
    const done = await bus.outcome(runId);
    expect(done.type).toBe("FAILED");
    expect(done.error?.type).toBe("InputValidationError");
    expect(done.error?.message).toContain("count");
    expect(done.error).not.toHaveProperty("stack");
    // A valid run afterwards is called: the calls file proves which ran.
    const ok = await bus.dispatch("strict", { count: 2 });
    expect((await bus.outcome(ok)).result).toBe(2);
    const calls = await readFile(callsFile(), "utf8");
    expect(calls).toContain(ok);
    expect(calls).not.toContain(runId);
  });

  it("fails a run that outlives its timeout with TimeoutError, even if it ignores its signal", async () => {
    const runId = await bus.dispatch("stubborn", {});
    const done = await bus.outcome(runId);
    expect(done.type).toBe("FAILED");
    expect(done.error?.type).toBe("TimeoutError");
    expect(done.error).not.toHaveProperty("stack");
    // A per-run timeout from the message wins over the task's.
    const quick = await bus.dispatch("slow", { ms: 5000 }, { timeoutSeconds: 0.3 });
    expect((await bus.outcome(quick)).error?.type).toBe("TimeoutError");
  });

  it("fails results that are not JSON with ResultNotSerializableError; undefined becomes null", async () => {
    const bad = await bus.dispatch("unserializable", {});
    const done = await bus.outcome(bad);
    expect(done.type).toBe("FAILED");
    expect(done.error?.type).toBe("ResultNotSerializableError");
    expect(done.error).not.toHaveProperty("stack");
    const none = await bus.dispatch("nothing", null);
    const ok = await bus.outcome(none);
    expect(ok.type).toBe("COMPLETED");
    expect(ok.result).toBeNull();
  });

  it("drops a malformed message without running anything and goes on", async () => {
    await bus.publishRaw("add", "{not json");
    await bus.publishRaw("add", JSON.stringify({ runId: "x" }));
    const runId = await bus.dispatch("add", { a: 1, b: 1 });
    expect((await bus.outcome(runId)).result).toMatchObject({ sum: 2 });
    await waitFor("the malformed messages to be logged", () => (worker.child.output().match(/malformed task message/g) ?? []).length >= 2);
  });

  it("fails the run of a malformed message when the message id names it, so it never waits forever", async () => {
    const runId = randomUUID();
    await bus.publishRaw("add", JSON.stringify({ runId, task: "add" }), Nats.dispatchMsgId(runId, 0));
    const outcome = await bus.outcome(runId);
    expect(outcome).toMatchObject({ type: "FAILED", error: { type: "MalformedTaskMessage" } });
    expect(outcome.error?.message).toMatch(/parameters/);
  });

  it("never has more runs in flight than its concurrency", async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, () => bus.dispatch("slow", { ms: 150, track: "concurrency" })));
    const outcomes = await Promise.all(ids.map((id) => bus.outcome(id, 30_000)));
    const seen = outcomes.map((e) => (e.result as { maxSeen: number }).maxSeen);
    expect(Math.max(...seen)).toBeLessThanOrEqual(3);
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(2);
  });

  it("announces itself on the heartbeat subject of each task it serves", async () => {
    // Heartbeats go out every 5 s: one arrives well within the subscription's timeout.
    const sub = bus.nc.subscribe(Nats.heartbeatSubject("add"), { max: 1, timeout: 10_000 });
    for await (const m of sub) {
      const hb = HeartbeatSchema.parse(m.json());
      expect(hb).toMatchObject({ task: "add", concurrency: 3, inFlight: 0 });
      expect(hb.workerId).toBe(bus.events[0]?.workerId);
    }
    expect(sub.getProcessed()).toBe(1);
  });

  it("answers /healthz, /readyz and /metrics", async () => {
    expect((await worker.get("/healthz")).status).toBe(200);
    expect((await worker.get("/readyz")).status).toBe(200);
    const metrics = await (await worker.get("/metrics")).text();
    expect(metrics).toMatch(/offload_worker_runs_started_total\{task="add"\} [1-9]/);
    expect(metrics).toMatch(/offload_worker_runs_completed_total\{task="add"\} [1-9]/);
    expect(metrics).toMatch(/offload_worker_runs_failed_total\{task="boom"\} 1/);
    expect(metrics).toContain("offload_worker_runs_in_flight");
    expect(metrics).toContain("offload_worker_run_duration_seconds_bucket");
  });

  it("logs one line per finished run", () => {
    const lines = worker.child.output().split("\n").filter((l) => l.includes('"run completed"') || l.includes('"run failed"'));
    expect(lines.length).toBeGreaterThan(5);
    expect(JSON.parse(lines[0]!)).toMatchObject({ runId: expect.any(String), task: expect.any(String), attempt: 1 });
  });

  // Last: it stops the worker.
  it("on SIGTERM stops taking runs, finishes the runs in flight, answers 503 on /readyz, and exits 0", async () => {
    // The runs outlast the checks below by a wide margin, so the worker is still draining during them.
    const ids = await Promise.all([1, 2].map(() => bus.dispatch("slow", { ms: 8000 })));
    await waitFor("both runs to start", () => ids.every((id) => bus.eventsOf(id).some((e) => e.type === "RUNNING")));
    worker.child.kill("SIGTERM");
    await worker.child.waitForOutput('"draining"');
    expect((await worker.get("/readyz")).status).toBe(503);
    expect((await worker.get("/healthz")).status).toBe(200);
    const later = await bus.dispatch("add", { a: 1, b: 2 });
    expect(await worker.child.exited).toBe(0);
    for (const id of ids) expect(bus.eventsOf(id).map((e) => e.type)).toEqual(["RUNNING", "COMPLETED"]);
    // The run published after SIGTERM was not taken: it waits in the stream for another worker.
    expect(bus.eventsOf(later)).toEqual([]);
  });
});
