import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, startNats, waitFor, type NatsServer } from "../support/index.js";
import { openBus, startWorker, type Bus, type WorkerProcess } from "./helpers.js";

// Several worker processes on one task share its durable consumer.
describe("offload-worker: replicas", () => {
  let nats: NatsServer;
  let bus: Bus;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    nats = await startNats();
    bus = await openBus(nats.url);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.child.stop(5000)));
    await bus?.close();
    await nats?.stop();
    await killAll();
  });

  it("two processes on one task share a backlog of 200 runs, each run done once", async () => {
    const env = { OFFLOAD_TASKS: "slow,add" };
    const [a, b] = await Promise.all([startWorker(nats.url, ["--concurrency", "4"], env, "worker-a"), startWorker(nats.url, ["--concurrency", "4"], env, "worker-b")]);
    workers.push(a!, b!);
    const ids = await Promise.all(Array.from({ length: 200 }, () => bus.dispatch("slow", { ms: 10 })));
    const outcomes = await Promise.all(ids.map((id) => bus.outcome(id, 45_000)));
    expect(outcomes.every((e) => e.type === "COMPLETED")).toBe(true);
    const byWorker = new Map<string, number>();
    for (const e of outcomes) byWorker.set(e.workerId, (byWorker.get(e.workerId) ?? 0) + 1);
    expect(byWorker.size).toBe(2);
    for (const n of byWorker.values()) expect(n).toBeGreaterThan(0);
    // Exactly one terminal event per run.
    const terminal = bus.events.filter((e) => ids.includes(e.runId) && e.type === "COMPLETED");
    expect(terminal).toHaveLength(200);
    // Runs ending together send their outcomes as one message: fewer messages than outcomes.
    expect(Math.max(...bus.messageSizes)).toBeGreaterThan(1);
    await Promise.all([a!.child.stop(10_000), b!.child.stop(10_000)]);
    expect(await a!.child.exited).toBe(0);
    expect(await b!.child.exited).toBe(0);
  });

  it("a worker SIGKILLed in the middle of a burst, outcomes batched, loses no run: each is completed by it or its heir", async () => {
    const env = { OFFLOAD_ACK_WAIT_SECONDS: "2", OFFLOAD_TASKS: "slow" };
    const victim = await startWorker(nats.url, ["--concurrency", "8"], env, "worker-victim");
    workers.push(victim);
    const ids = await Promise.all(Array.from({ length: 120 }, () => bus.dispatch("slow", { ms: 20 })));
    await waitFor("a third of the runs to complete", () => ids.filter((id) => bus.eventsOf(id).some((e) => e.type === "COMPLETED")).length >= 40);
    victim.child.kill("SIGKILL");
    await victim.child.exited;
    const heir = await startWorker(nats.url, ["--concurrency", "8"], env, "worker-victim-heir");
    workers.push(heir);
    const outcomes = await Promise.all(ids.map((id) => bus.outcome(id, 30_000)));
    expect(outcomes.every((e) => e.type === "COMPLETED")).toBe(true);
    // At least once: a run whose outcome was stored but not acked when the worker died may be done again, as a later attempt, never twice as one.
    for (const id of ids) {
      const attempts = bus.eventsOf(id).filter((e) => e.type === "COMPLETED").map((e) => e.attempt);
      expect(new Set(attempts).size).toBe(attempts.length);
    }
    expect(await heir.child.stop(10_000)).toBe(0);
  });

  it("a run whose worker is SIGKILLed is redelivered to another worker after the ack wait, as attempt 2", async () => {
    const env = { OFFLOAD_ACK_WAIT_SECONDS: "2", OFFLOAD_TASKS: "slow" };
    const first = await startWorker(nats.url, ["--concurrency", "2"], env, "worker-doomed");
    workers.push(first);
    // Slow on the first attempt only, so the second one finishes at once.
    const runId = await bus.dispatch("slow", { ms: 60_000, untilAttempt: 2 });
    const running = await waitFor("the run to start", () => bus.eventsOf(runId).find((e) => e.type === "RUNNING"));
    expect(running.attempt).toBe(1);
    first.child.kill("SIGKILL");
    await first.child.exited;

    const second = await startWorker(nats.url, [], env, "worker-heir");
    workers.push(second);
    const done = await bus.outcome(runId, 30_000);
    expect(done.type).toBe("COMPLETED");
    expect(done.attempt).toBe(2);
    expect(done.workerId).not.toBe(running.workerId);
    expect(done.result).toMatchObject({ attempt: 2 });
    // The second try is shorter than the RUNNING delay: its start travels with its outcome.
    expect(bus.eventsOf(runId).map((e) => `${e.type}:${e.attempt}`)).toEqual(["RUNNING:1", "COMPLETED:2"]);
    expect(await second.child.stop(10_000)).toBe(0);
  });

  it("a run still going when the drain time is up is abandoned, then redelivered to another worker as attempt 2", async () => {
    // The default ack wait (30 s) is back: only the worker releasing the message makes the redelivery prompt.
    const env = { OFFLOAD_TASKS: "slow", OFFLOAD_DRAIN_SECONDS: "0.5" };
    const quitter = await startWorker(nats.url, [], env, "worker-quitter");
    workers.push(quitter);
    const runId = await bus.dispatch("slow", { ms: 60_000, untilAttempt: 2 });
    await waitFor("the run to start", () => bus.eventsOf(runId).find((e) => e.type === "RUNNING"));
    quitter.child.kill("SIGTERM");
    expect(await quitter.child.exited).toBe(0);
    expect(quitter.child.output()).toContain("abandoning the runs still in flight");

    const next = await startWorker(nats.url, [], env, "worker-next");
    workers.push(next);
    const done = await bus.outcome(runId, 20_000);
    expect(done).toMatchObject({ type: "COMPLETED", attempt: 2, workerId: next.child.output().match(/"workerId":"([^"]+)"/)?.[1] });
    expect(bus.eventsOf(runId).map((e) => `${e.type}:${e.attempt}`)).toEqual(["RUNNING:1", "COMPLETED:2"]);
  });
});
