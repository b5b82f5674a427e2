// Admission's SQL against real PostgreSQL and embedded PGlite: which held runs
// a pass dispatches (limits per key, round-robin, priority, rate windows), why
// the others wait, and that a failed publish leaves everything held. The
// publish is a function here (it records what would go to NATS); the system
// test (limits.test.ts) runs the whole path with workers.
import { randomUUID } from "node:crypto";
import type { CreateRunBody, Run } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { admitTask, type TaskLimits } from "../../operator/src/store/admission.js";
import type { Db } from "../../operator/src/store/db.js";
import { applyEvents } from "../../operator/src/store/events.js";
import { getRun, recordRuns, type StoredRun } from "../../operator/src/store/runs.js";
import { sweepDue } from "../../operator/src/store/sweep.js";
import { retryFailedRun } from "../../operator/src/store/transitions.js";
import { openTestDb, type TestDb } from "../support/index.js";

const kinds = ["postgres", "pglite"] as const;

describe.each(kinds)("admission passes on %s", (kind) => {
  let store: TestDb | undefined;
  let db: Db;

  beforeAll(async () => {
    store = await openTestDb(kind, "admission");
    db = store.db;
  }, 60_000);

  afterAll(async () => {
    await store?.close();
  });

  const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;
  // One call per run: a batch shares one creation time, so only separate calls give the runs an order of arrival.
  const hold = async (task: string, bodies: Partial<CreateRunBody>[]): Promise<Run[]> => {
    const runs: Run[] = [];
    for (const b of bodies) {
      const [recorded] = await recordRuns(db, [{ task, ...b }], { retentionSeconds: 0, limited: new Set([task]) });
      expect(recorded).toMatchObject({ held: true, due: false, run: { state: "PENDING", waitingFor: null } });
      runs.push(recorded!.run);
    }
    return runs;
  };
  const pass = async (task: string, limits: TaskLimits, opts: { fail?: boolean } = {}) => {
    const published: StoredRun[] = [];
    const outcome = await admitTask(db, task, limits, async (runs) => {
      if (opts.fail) throw new Error("NATS is away");
      published.push(...runs);
    });
    expect(outcome.dispatched.map((r) => r.run.id)).toEqual(published.map((r) => r.run.id));
    return { ...outcome, ids: published.map((r) => r.run.id) };
  };
  const finish = (ids: string[]) => db.query("UPDATE runs SET state = 'COMPLETED', finished_at = now() WHERE id = ANY($1::uuid[])", [`{${ids.join(",")}}`]);

  it("dispatches at most the limit per key, round-robin across keys, and says why the rest wait", async () => {
    const task = taskName("conc");
    const a = await hold(task, Array.from({ length: 10 }, () => ({ concurrencyKey: "acme" })));
    const b = await hold(task, Array.from({ length: 3 }, () => ({ concurrencyKey: "globex" })));
    const limits: TaskLimits = { concurrency: { limit: 2, keyed: true } };

    const first = await pass(task, limits);
    expect(new Set(first.ids)).toEqual(new Set([a[0]!.id, a[1]!.id, b[0]!.id, b[1]!.id]));
    // Round-robin: each key's first run before any key's second.
    expect(new Set(first.ids.slice(0, 2))).toEqual(new Set([a[0]!.id, b[0]!.id]));
    expect(first.waiting).toBe(9);
    expect((await getRun(db, a[5]!.id))!.waitingFor).toEqual({ kind: "concurrency", key: "acme", limit: 2, running: 2 });
    expect((await getRun(db, b[2]!.id))!.waitingFor).toEqual({ kind: "concurrency", key: "globex", limit: 2, running: 2 });
    expect(first.reasonChanged).toHaveLength(9);
    expect(first.dispatched.every((r) => r.run.state === "PENDING" && r.run.waitingFor === null)).toBe(true);

    // Nothing freed: nothing moves, and the reasons (unchanged) are not written again.
    const idle = await pass(task, limits);
    expect(idle.ids).toEqual([]);
    expect(idle.reasonChanged).toEqual([]);

    // One of acme's finishes (any outcome frees the slot: the count comes from the records).
    await finish([a[0]!.id]);
    const next = await pass(task, limits);
    expect(next.ids).toEqual([a[2]!.id]);
  });

  it("starts lower priority numbers first", async () => {
    const task = taskName("prio");
    const limits: TaskLimits = { concurrency: { limit: 1, keyed: false } };
    const backlog = await hold(task, Array.from({ length: 5 }, () => ({ priority: 5 })));
    expect((await pass(task, limits)).ids).toEqual([backlog[0]!.id]);
    const [urgent] = await hold(task, [{ priority: 1 }]);
    expect((await pass(task, limits)).ids).toEqual([]);
    expect((await getRun(db, urgent!.id))!.waitingFor).toEqual({ kind: "concurrency", key: null, limit: 1, running: 1 });
    await finish([backlog[0]!.id]);
    expect((await pass(task, limits)).ids).toEqual([urgent!.id]);
  });

  it("counts starts in a sliding window for a rate limit and says when the next slot frees", async () => {
    const task = taskName("rate");
    const limits: TaskLimits = { rateLimit: { limit: 3, periodSeconds: 60, keyed: true } };
    const runs = await hold(task, Array.from({ length: 5 }, () => ({ rateLimitKey: "t1" })));
    const before = Date.now();
    const first = await pass(task, limits);
    expect(first.ids).toEqual(runs.slice(0, 3).map((r) => r.id));
    // Finishing does not give a start back: only the window does.
    await finish(first.ids);
    const second = await pass(task, limits);
    expect(second.ids).toEqual([]);
    const waiting = (await getRun(db, runs[3]!.id))!.waitingFor;
    expect(waiting).toMatchObject({ kind: "rateLimit", key: "t1", limit: 3, periodSeconds: 60, started: 3 });
    const nextSlot = Date.parse((waiting as { nextSlotAt: string }).nextSlotAt);
    expect(nextSlot).toBeGreaterThan(before + 59_000);
    expect(second.wakeAt).toBe(nextSlot);
    // The window moves: starts older than the period no longer count.
    await db.query("UPDATE rate_limit_starts SET started_at = started_at - interval '61 seconds' WHERE task = $1", [task]);
    expect((await pass(task, limits)).ids).toEqual(runs.slice(3).map((r) => r.id));
  });

  it("leaves every run held when the publish fails, and lets them all go once the task has no limit", async () => {
    const task = taskName("fail");
    const limits: TaskLimits = { concurrency: { limit: 5, keyed: false } };
    const runs = await hold(task, [{}, {}, {}]);
    await expect(pass(task, limits, { fail: true })).rejects.toThrow("NATS is away");
    for (const r of runs) expect((await getRun(db, r.id))!.state).toBe("PENDING");
    expect((await pass(task, { concurrency: { limit: 1, keyed: false } })).ids).toEqual([runs[0]!.id]);
    const released = await pass(task, {});
    expect(released.ids).toEqual([runs[1]!.id, runs[2]!.id]);
    expect(released.waiting).toBe(0);
  });

  it("counts a run a worker started from a publish its pass rolled back: no second run starts past the limit", async () => {
    const task = taskName("rolled-back");
    const limits: TaskLimits = { concurrency: { limit: 1, keyed: false } };
    const [first, second] = await hold(task, [{}, {}]);
    // The pass published the first run, then failed (a NATS blip on the next publish, or the replica died before
    // COMMIT): the record rolls back to held, but the message is in JetStream and a worker starts it.
    await expect(pass(task, limits, { fail: true })).rejects.toThrow("NATS is away");
    const [running] = await applyEvents(db, [{ runId: first!.id, task, type: "RUNNING", attempt: 1, workerId: "w1", at: new Date().toISOString() }]);
    expect(running).toMatchObject({ state: "RUNNING" });
    const next = await pass(task, limits);
    expect(next.ids).toEqual([]);
    expect((await getRun(db, second!.id))!.waitingFor).toEqual({ kind: "concurrency", key: null, limit: 1, running: 1 });
    // Its outcome frees the slot as any other.
    await finish([first!.id]);
    expect((await pass(task, limits)).ids).toEqual([second!.id]);
  });

  // PostgreSQL only: PGlite has one session, which no timeout may end (so it gets none), and no second replica.
  if (kind === "postgres") it("ends a pass stalled in its publish, so the task's lock does not stop every replica's admission", async () => {
    const task = taskName("stalled");
    const limits: TaskLimits = { concurrency: { limit: 5, keyed: false } };
    const [first, second] = await hold(task, [{}, {}]);
    // A replica frozen or cut off mid-pass: its publish never returns, its transaction holds the task's lock.
    let unfreeze!: () => void;
    const frozen = new Promise<void>((resolve) => (unfreeze = resolve));
    let stalledStarted!: () => void;
    const started = new Promise<void>((resolve) => (stalledStarted = resolve));
    const stalled = admitTask(db, task, { concurrency: { limit: 1, keyed: false } }, async () => (stalledStarted(), frozen), { stallTimeoutMs: 500 });
    stalled.catch(() => undefined);
    await started;
    // Another replica's pass waits for the lock; PostgreSQL ends the stalled session, and this pass goes on.
    const other = pass(task, limits);
    const ended = await Promise.race([other, new Promise<"stuck">((resolve) => setTimeout(() => resolve("stuck"), 20_000).unref())]);
    unfreeze();
    expect(ended).not.toBe("stuck");
    await expect(stalled).rejects.toThrow();
    expect(new Set((ended as Awaited<typeof other>).ids)).toEqual(new Set([first!.id, second!.id]));
  });

  it("holds a due retry of a limited task for admission instead of publishing it", async () => {
    const task = taskName("retry");
    const [plain] = await recordRuns(db, [{ task }], { retentionSeconds: 0 });
    expect(plain).toMatchObject({ due: true, held: false, run: { state: "PENDING" } });
    await db.query("UPDATE runs SET state = 'AWAITING_RETRY', attempts = 1, published_at = now(), retry_at = now() - interval '1 second' WHERE id = $1::uuid", [
      plain!.run.id,
    ]);
    const published: StoredRun[] = [];
    const moved = await sweepDue(db, { republishAfterSeconds: 5, limit: 100, limited: new Set([task]) }, async (runs) => void published.push(...runs));
    expect(published.filter((r) => r.run.task === task)).toEqual([]);
    expect(moved.held.map((r) => r.run.id)).toEqual([plain!.run.id]);
    expect(moved.held[0]).toMatchObject({ dispatch: 1, run: { state: "PENDING" } });
    const admitted = await pass(task, { concurrency: { limit: 1, keyed: false } });
    expect(admitted.dispatched).toEqual([expect.objectContaining({ dispatch: 1 })]);
  });

  it("holds a manual retry and a run scheduled for later of a limited task until admission lets them go", async () => {
    const task = taskName("later");
    const limited = new Set([task]);
    const limits: TaskLimits = { concurrency: { limit: 1, keyed: false } };
    // A run scheduled for later is recorded SCHEDULED (not held); once due, the sweeper holds it.
    const [later] = await recordRuns(db, [{ task, scheduledAt: new Date(Date.now() + 3_600_000).toISOString() }], { retentionSeconds: 0, limited });
    expect(later).toMatchObject({ held: false, due: false, run: { state: "SCHEDULED" } });
    // Its time came (created before it, as a run scheduled for later is).
    await db.query("UPDATE runs SET created_at = now() - interval '2 seconds', scheduled_at = now() - interval '1 second' WHERE id = $1::uuid", [
      later!.run.id,
    ]);
    const published: StoredRun[] = [];
    const swept = await sweepDue(db, { republishAfterSeconds: 5, limit: 100, limited }, async (runs) => void published.push(...runs));
    expect(swept.held.map((r) => r.run.id)).toEqual([later!.run.id]);
    expect(published.filter((r) => r.run.task === task)).toEqual([]);
    expect((await pass(task, limits)).ids).toEqual([later!.run.id]);

    // A FAILED run retried by hand is held with its next dispatch number, not published.
    await db.query("UPDATE runs SET state = 'FAILED', attempts = 1, finished_at = now() WHERE id = $1::uuid", [later!.run.id]);
    const retried = await retryFailedRun(db, later!.run.id, (t) => limited.has(t));
    expect(retried?.run).toMatchObject({ state: "PENDING", attempts: 1, error: null });
    const again = await pass(task, limits);
    expect(again.dispatched).toEqual([expect.objectContaining({ dispatch: 1, run: expect.objectContaining({ id: later!.run.id }) })]);
  });
});
