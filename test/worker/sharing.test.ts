import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, startNats, type NatsServer } from "../support/index.js";
import { openBus, startWorker, type Bus, type WorkerProcess } from "./helpers.js";

// One worker process (concurrency 4) serving every task of the fixture module: the tasks share its slots.
describe("offload-worker: tasks sharing a worker's slots", () => {
  let nats: NatsServer;
  let bus: Bus;
  let worker: WorkerProcess;

  beforeAll(async () => {
    nats = await startNats();
    bus = await openBus(nats.url);
    worker = await startWorker(nats.url, ["--concurrency", "4"]);
  });
  afterAll(async () => {
    await worker?.child.stop(5000);
    await bus?.close();
    await nats?.stop();
    await killAll();
  });

  it("a task that gets one run at a time leaves the other slots to other tasks' runs", async () => {
    // One long run: its task's loop goes on fetching for more while it runs. That fetch used to take every free
    // slot and keep them until it expired, so another task's run waited for the long run to end.
    const long = await bus.dispatch("slow", { ms: 1500, track: "sharing" });
    await bus.event(long, "RUNNING");
    const quick = await bus.dispatch("add", { a: 2, b: 3 });
    const quickDone = await bus.outcome(quick);
    expect(quickDone).toMatchObject({ type: "COMPLETED", result: { sum: 5 } });
    // Which ended first is in the events: the quick run's outcome came while the long one still ran.
    expect(bus.eventsOf(long).map((e) => e.type)).toEqual(["RUNNING"]);
    expect(await bus.outcome(long)).toMatchObject({ type: "COMPLETED" });
  });
});
