// Events of one run can be recorded out of order: the API replicas share one
import type { Json } from "@offload/sdk/internal";
// events consumer, so a quick run's RUNNING may go to one replica and its
// COMPLETED to another, which records it first. The record must still say
// when the try started, and the late RUNNING must not move it back.
// Also here: the run an applied event hands to listeners (built from the
// updated row's JSON, only when asked for) is the run a read answers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../operator/src/store/db.js";
import { applyEventBatch, applyEvents } from "../../operator/src/store/events.js";
import { getRun, markPending, recordRuns } from "../../operator/src/store/runs.js";
import { openTestDb, type TestDb } from "../support/index.js";

describe.each(["pglite", "postgres"] as const)("run events on %s", (kind) => {
  let store: TestDb | undefined;
  let db: Db;

  beforeAll(async () => {
    store = await openTestDb(kind, `event_order_${kind}`);
    db = store.db;
  }, 60_000);

  afterAll(async () => {
    await store?.close();
  });

  async function pendingRun(parameters: Json = {}): Promise<string> {
    const [r] = await recordRuns(db, [{ task: "quick", parameters, priority: 1 }], { retentionSeconds: 0 });
    await markPending(db, [r!.run.id]);
    return r!.run.id;
  }

  const base = { task: "quick", attempt: 1, workerId: "w1" } as const;

  it("keeps a try's start when its outcome is recorded before its RUNNING, and the late RUNNING changes nothing", async () => {
    const runId = await pendingRun();
    const startedAt = "2026-11-30T10:00:00.000Z";
    const [done] = await applyEvents(db, [{ ...base, runId, type: "COMPLETED", at: "2026-11-30T10:00:00.020Z", startedAt, result: 42 }]);
    expect(done?.run()).toMatchObject({ state: "COMPLETED", startedAt, finishedAt: "2026-11-30T10:00:00.020Z", attempts: 1, result: 42 });
    const [late] = await applyEvents(db, [{ ...base, runId, type: "RUNNING", at: startedAt }]);
    expect(late).toBeUndefined();
  });

  it("records a failed try's start from its AWAITING_RETRY, and the next try's RUNNING replaces it", async () => {
    const runId = await pendingRun();
    const [waiting] = await applyEvents(db, [
      { ...base, runId, type: "AWAITING_RETRY", at: "2026-11-30T10:00:01.000Z", startedAt: "2026-11-30T10:00:00.500Z", error: { type: "Error", message: "x" } },
    ]);
    expect(waiting?.run()).toMatchObject({ state: "AWAITING_RETRY", startedAt: "2026-11-30T10:00:00.500Z", attempts: 1 });
    // That try's RUNNING, recorded late, must not undo the retry (the run would then wait for an outcome that was sent).
    expect((await applyEvents(db, [{ ...base, runId, type: "RUNNING", at: "2026-11-30T10:00:00.500Z" }]))[0]).toBeUndefined();
    const [second] = await applyEvents(db, [{ ...base, runId, attempt: 2, type: "RUNNING", at: "2026-11-30T10:00:02.000Z" }]);
    expect(second?.run()).toMatchObject({ state: "RUNNING", attempts: 2, startedAt: "2026-11-30T10:00:02.000Z" });
  });

  it("leaves the start unknown when an outcome without one (a worker of an older version) comes first", async () => {
    const runId = await pendingRun();
    const [done] = await applyEvents(db, [{ ...base, runId, type: "FAILED", at: "2026-11-30T10:00:00.020Z", error: { type: "Error", message: "x" } }]);
    expect(done?.run()).toMatchObject({ state: "FAILED", startedAt: null });
  });

  it("hands listeners the run exactly as a read answers it, after every kind of event in one batch", async () => {
    const [a, b, c] = [await pendingRun({ n: 1, nested: { list: [1, "two"] } }), await pendingRun(), await pendingRun()];
    // Sub-millisecond times: the database keeps microseconds, both conversions must cut them the same way.
    const at = (ms: number): string => `2026-11-30T10:00:0${ms}.123456Z`;
    const { changes, held } = await applyEventBatch(db, [
      { ...base, runId: a, type: "RUNNING", at: at(1) },
      { ...base, runId: b, type: "RUNNING", at: at(1) },
      { ...base, runId: c, type: "CANCELLED", at: at(1) },
      { ...base, runId: a, type: "PROGRESS", progress: { value: 0.5, done: 1, total: 2, message: "half", updatedAt: at(2) } },
      { ...base, runId: b, type: "AWAITING_RETRY", at: at(2), error: { type: "Error", message: "again" }, retryAt: at(9) },
      { ...base, runId: a, type: "COMPLETED", at: at(3), result: { ok: [1, 2] }, cached: false, cacheKey: "k" },
    ]);
    expect(held).toEqual([]);
    expect(changes.map((ch) => ch?.state)).toEqual(["RUNNING", "RUNNING", "CANCELLED", "RUNNING", "AWAITING_RETRY", "COMPLETED"]);
    expect(changes[3]!.run().progress).toMatchObject({ message: "half" });
    for (const [i, id] of [[5, a], [4, b], [2, c]] as const) expect(changes[i]!.run()).toEqual(await getRun(db, id));
    expect(changes[5]!.run()).toMatchObject({ id: a, task: "quick", parameters: { n: 1, nested: { list: [1, "two"] } }, priority: 1, result: { ok: [1, 2] }, finishedAt: "2026-11-30T10:00:03.123Z" });
  });

  // Only PostgreSQL has other sessions to hold a row.
  if (kind === "postgres") {
    it("answers a batch's events of a run another transaction holds as held, that run's later events too, and applies the rest", async () => {
      const [free, busy] = [await pendingRun(), await pendingRun()];
      let release!: () => void;
      const holding = db.transaction(async (tx) => {
        await tx.query("SELECT id FROM runs WHERE id = $1::uuid FOR UPDATE", [busy]);
        await new Promise<void>((resolve) => (release = resolve));
      });
      await expect.poll(() => release !== undefined).toBe(true);
      try {
        const { changes, held } = await applyEventBatch(db, [
          { ...base, runId: busy, type: "RUNNING", at: "2026-11-30T10:00:01.000Z" },
          { ...base, runId: free, type: "RUNNING", at: "2026-11-30T10:00:01.000Z" },
          { ...base, runId: busy, type: "COMPLETED", at: "2026-11-30T10:00:02.000Z" },
          { ...base, runId: free, type: "COMPLETED", at: "2026-11-30T10:00:02.000Z" },
        ]);
        expect(held).toEqual([0, 2]);
        expect(changes.map((ch) => ch?.state)).toEqual([undefined, "RUNNING", undefined, "COMPLETED"]);
      } finally {
        release();
        await holding;
      }
      expect((await getRun(db, busy))!.state).toBe("PENDING");
    });
  }
});
