// The run API's long-poll of the task load (GET /v1/tasks?since=&wait=), which
// the controller's autoscaler waits on: the shared, rate-limited read in
// process, then through a real run API, nats-server and worker.
import { setMaxListeners } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OffloadClient, type TaskInfo, type TaskList } from "@offload/sdk";
import { pino } from "pino";
import { TaskLoadWatch, loadVersion } from "../../operator/src/api/task-load.js";
import { TaskWatch, changedTasks, type TaskListChange } from "../../operator/src/controller/task-watch.js";
import type { Clock } from "../../operator/src/controller/queue.js";
import { killAll, startStack, stopSharedPostgres, type Stack } from "../support/index.js";
import { startApiProcess } from "../api/helpers.js";

const TASKS = fileURLToPath(new URL("./fixtures/tasks.mjs", import.meta.url));

const task = (name: string, backlog: number, workers: TaskInfo["workers"] = []): TaskInfo => ({ name, backlog, inFlight: 0, workers });
const worker = (workerId: string, inFlight: number): TaskInfo["workers"][number] => ({ workerId, concurrency: 2, inFlight, lastSeenAt: new Date().toISOString() });

describe("TaskLoadWatch", () => {
  it("names a load by backlog and in-flight counts, not by heartbeat times or order", () => {
    const a = [task("a", 1, [worker("p1", 0), worker("p2", 1)]), task("b", 0)];
    const later = [task("b", 0), task("a", 1, [{ ...worker("p2", 1), lastSeenAt: "2030-01-01T00:00:00.000Z" }, worker("p1", 0)])];
    expect(loadVersion(later)).toBe(loadVersion(a));
    expect(loadVersion([task("a", 2, [worker("p1", 0), worker("p2", 1)]), task("b", 0)])).not.toBe(loadVersion(a));
    expect(loadVersion([task("a", 1, [worker("p1", 1), worker("p2", 1)]), task("b", 0)])).not.toBe(loadVersion(a));
  });

  it("a hundred waiters and a hundred wake-ups share one read per interval", async () => {
    let reads = 0;
    const watch = new TaskLoadWatch(async () => (reads++, [task("a", 0)]), { minIntervalMs: 60_000, rescanMs: 60_000 });
    const { version } = await watch.current();
    expect(reads).toBe(1);
    const stop = new AbortController();
    setMaxListeners(200, stop.signal);
    const waiting = Array.from({ length: 100 }, () => watch.waitForChange(version, 60_000, stop.signal));
    for (let i = 0; i < 100; i++) watch.poke();
    // The wake-ups' read is held until a minute after the first: none more has started.
    await new Promise((r) => setImmediate(r));
    expect(reads).toBe(1);
    stop.abort();
    const answers = await Promise.all(waiting);
    expect(new Set(answers.map((a) => a.version))).toEqual(new Set([version]));
  });

  it("wakes every waiter with the new load after a wake-up, and answers at once for another version", async () => {
    let backlog = 0;
    const watch = new TaskLoadWatch(async () => [task("a", backlog)], { minIntervalMs: 0, rescanMs: 60_000 });
    const first = await watch.current();
    const waiting = Array.from({ length: 10 }, () => watch.waitForChange(first.version, 60_000));
    backlog = 3;
    watch.poke();
    const answers = await Promise.all(waiting);
    for (const a of answers) expect(a.tasks).toEqual([task("a", 3)]);
    expect(answers[0]!.version).not.toBe(first.version);
    // A caller behind the times is answered without waiting.
    expect((await watch.waitForChange(first.version, 60_000)).version).toBe(answers[0]!.version);
    expect((await watch.waitForChange("not-a-version", 60_000)).tasks).toEqual([task("a", 3)]);
  });
});

describe("GET /v1/tasks?since=&wait= against a real run API and worker", () => {
  let stack: Stack;
  let client: OffloadClient;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-task-load-"));
    stack = await startStack();
    client = stack.client;
  });
  afterAll(async () => {
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  /** Long-polls from `since` until `done` holds, as the controller's loop does. */
  async function pollUntil(since: string, done: (l: TaskList) => boolean): Promise<TaskList> {
    let list = await client.pollTasks({ since, waitSeconds: 30 });
    while (!done(list)) list = await client.pollTasks({ since: list.version, waitSeconds: 30 });
    return list;
  }

  it("answers the same version while nothing changes, and a plain GET says the version too", async () => {
    const now = await client.pollTasks();
    expect(now).toEqual({ tasks: [], version: expect.any(String) });
    const after = await client.pollTasks({ since: now.version, waitSeconds: 1 });
    expect(after).toEqual(now);
  });

  it("refuses a wait over 60 s with OFFLOAD_VALIDATION", async () => {
    const res = await fetch(`${stack.apiUrl}/v1/tasks?wait=61`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "OFFLOAD_VALIDATION" });
  });

  it("wakes a waiting poll with the backlog of a run delayed for a task no worker serves yet", async () => {
    const before = await client.pollTasks();
    const waiting = client.pollTasks({ since: before.version, waitSeconds: 60 });
    await client.createRun({ task: "as-quick", parameters: { n: 1 } });
    const woken = await waiting;
    expect(woken.version).not.toBe(before.version);
    // The run is recorded (the task is listed) a moment before it is marked PENDING (its backlog).
    const queued = (l: TaskList): boolean => l.tasks.some((t) => t.name === "as-quick" && t.backlog === 1);
    const seen = queued(woken) ? woken : await pollUntil(woken.version, queued);
    expect(seen.tasks.find((t) => t.name === "as-quick")).toMatchObject({ backlog: 1, workers: [] });
  });

  it("shows each worker's in-flight runs as they start and finish", async () => {
    const base = await client.pollTasks();
    const w = await stack.startWorker({ module: TASKS, concurrency: 2, env: { OFFLOAD_WORKER_ID: "pod-a" } });
    const release = join(dir, "release-1");
    const run = await client.createRun({ task: "as-long", parameters: { release } });
    const busy = await pollUntil(base.version, (l) => l.tasks.some((t) => t.name === "as-long" && t.workers.some((x) => x.workerId === "pod-a" && x.inFlight === 1)));
    expect(busy.tasks.find((t) => t.name === "as-long")).toMatchObject({ backlog: 0, inFlight: 1 });
    // The quick run waiting since the last test was taken by the new worker too.
    await writeFile(release, "");
    const idle = await pollUntil(busy.version, (l) => l.tasks.some((t) => t.name === "as-long" && t.inFlight === 0 && t.workers.every((x) => x.inFlight === 0)));
    expect(idle.tasks.find((t) => t.name === "as-long")!.workers).toEqual([expect.objectContaining({ workerId: "pod-a", inFlight: 0 })]);
    expect((await client.getResult(run.id, 20)).result).toEqual({ released: true, worker: "pod-a" });
    await w.child.stop(5000);
  });

  it("a long-poll on one replica wakes for a run accepted by another (the nudge travels over NATS)", async () => {
    // A second replica on the same NATS and database.
    const other = await startApiProcess("offload-api-b", { OFFLOAD_NATS_URL: stack.nats.url, OFFLOAD_DATABASE_URL: stack.databaseUrl });
    try {
      const b = new OffloadClient({ apiUrl: other.url, token: "" });
      const before = await client.pollTasks();
      const waiting = client.pollTasks({ since: before.version, waitSeconds: 60 });
      await b.createRun({ task: "as-elsewhere", parameters: {} });
      const queued = (l: TaskList): boolean => l.tasks.some((t) => t.name === "as-elsewhere" && t.backlog === 1);
      let list = await waiting;
      while (!queued(list)) list = await client.pollTasks({ since: list.version, waitSeconds: 30 });
      expect(list.tasks.find((t) => t.name === "as-elsewhere")).toMatchObject({ backlog: 1 });
      expect((await b.pollTasks()).tasks.find((t) => t.name === "as-elsewhere")).toMatchObject({ backlog: 1 });
    } finally {
      await other.stop();
    }
  });

  it("the controller's TaskWatch follows the list with one loop, says which tasks changed, and rides out a run API restart", async () => {
    const changes: TaskListChange[] = [];
    const waiters = new Set<() => void>();
    const next = (what: string, done: (c: TaskListChange) => boolean): Promise<TaskListChange> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = changes.find(done);
          if (!hit) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`no change: ${what}; saw ${JSON.stringify(changes)}`))), 30_000);
        waiters.add(check);
        check();
      });
    const watch = new TaskWatch({
      client,
      log: pino({ level: "silent" }),
      retryBaseMs: 50,
      retryMaxMs: 200,
      onChange: (c) => {
        changes.push(c);
        for (const w of [...waiters]) w();
      },
    });
    watch.start();
    try {
      const first = await next("the first list", () => true);
      expect(first.state.ok).toBe(true);
      changes.length = 0;
      await client.createRun({ task: "as-fresh", parameters: { n: 1 } });
      const fresh = await next("as-fresh's backlog", (c) => c.state.ok && c.state.tasks.some((t) => t.name === "as-fresh" && t.backlog === 1));
      expect(fresh.changed.has("as-fresh")).toBe(true);
      expect((await watch.get())?.find((t) => t.name === "as-fresh")).toMatchObject({ backlog: 1 });

      changes.length = 0;
      await stack.api.stop(5000);
      const down = await next("the run API down", (c) => !c.state.ok);
      changes.length = 0;
      expect(down.state).toMatchObject({ ok: false, message: expect.stringContaining("task list is unavailable") });
      expect(await watch.get()).toBeUndefined();
      await stack.startApi();
      const up = await next("the run API back", (c) => c.state.ok);
      expect(up.changed.has("as-fresh")).toBe(true);
    } finally {
      await watch.stop();
    }
  });
});

describe("TaskWatch's pace", () => {
  /** A clock the test moves by hand. */
  function manualClock(): Clock & { advance(ms: number): void } {
    let now = 0;
    let timers: { at: number; fn: () => void }[] = [];
    return {
      now: () => now,
      setTimeout(fn, ms) {
        const t = { at: now + ms, fn };
        timers.push(t);
        return { cancel: () => (timers = timers.filter((x) => x !== t)) };
      },
      advance(ms) {
        now += ms;
        const due = timers.filter((t) => t.at <= now);
        timers = timers.filter((t) => t.at > now);
        for (const t of due) t.fn();
      },
    };
  }
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

  it("asks at most once per second while the load changes all the time, and at once after a quiet spell", async () => {
    const clock = manualClock();
    const calls: (string | undefined)[] = [];
    let quiet: (() => void) | undefined;
    const client = {
      async pollTasks(o: { since?: string }): Promise<TaskList> {
        calls.push(o.since);
        // The fourth call finds nothing new until the test says so (a long-poll waiting).
        if (calls.length === 4) await new Promise<void>((r) => (quiet = r));
        return { tasks: [task("a", calls.length)], version: `v${calls.length}` };
      },
    };
    const watch = new TaskWatch({ client, log: pino({ level: "silent" }), clock });
    watch.start();
    await settle();
    expect(calls).toEqual([undefined]);
    clock.advance(999);
    await settle();
    expect(calls).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(calls).toEqual([undefined, "v1"]);
    clock.advance(1000);
    await settle();
    expect(calls).toEqual([undefined, "v1", "v2"]);
    // A long-poll that waited 5 s before its answer: the next call goes at once.
    clock.advance(1000);
    await settle();
    expect(calls).toHaveLength(4);
    clock.advance(5000);
    quiet!();
    await settle();
    expect(calls).toEqual([undefined, "v1", "v2", "v3", "v4"]);
    // The fifth answered at once, again: the sixth waits its second.
    expect(watch.state()).toMatchObject({ ok: true, version: "v5" });
    const stopping = watch.stop();
    clock.advance(1000);
    await stopping;
  });
});

describe("changedTasks", () => {
  it("names tasks whose backlog, in-flight or workers' load changed, and tasks that came or went", () => {
    const before = [task("a", 1, [worker("p1", 0)]), task("b", 0), task("c", 2)];
    const after = [task("a", 1, [{ ...worker("p1", 0), lastSeenAt: "2030-01-01T00:00:00.000Z" }]), task("b", 3), task("d", 0)];
    expect(changedTasks(before, after)).toEqual(new Set(["b", "c", "d"]));
    expect(changedTasks(before, [task("a", 1, [worker("p1", 1)]), task("b", 0), task("c", 2)])).toEqual(new Set(["a"]));
    expect(changedTasks(undefined, before)).toEqual(new Set(["a", "b", "c"]));
  });
});

