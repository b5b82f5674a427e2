// Events of one run can be recorded out of order: the API replicas share one
// events consumer, so a quick run's RUNNING may go to one replica and its
// COMPLETED to another, which records it first. The record must still say
// when the try started, and the late RUNNING must not move it back.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Db } from "../../operator/src/store/db.js";
import { applyEvents } from "../../operator/src/store/events.js";
import { markPending, recordRuns } from "../../operator/src/store/runs.js";
import { openTestDb, type TestDb } from "../support/index.js";

let store: TestDb | undefined;
let db: Db;

beforeAll(async () => {
  store = await openTestDb("pglite", "event-order");
  db = store.db;
}, 60_000);

afterAll(async () => {
  await store?.close();
});

async function pendingRun(): Promise<string> {
  const [r] = await recordRuns(db, [{ task: "quick", parameters: {} }], { retentionSeconds: 0 });
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
