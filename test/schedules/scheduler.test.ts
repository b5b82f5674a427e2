// The scheduler loop in-process against real PostgreSQL, for what the system tests cannot time: the rows two replicas
// leave when one fires a time late. Runs are recorded by the real store (as POST /v1/runs records them); publishing is
// left out (the scheduler only needs its submit and cancel paths), and the clock is fixed, so every time is exact.
import { randomUUID } from "node:crypto";
import { scheduleRunKey, type ConcurrencyPolicy } from "@offload/sdk/internal";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startScheduler, type ScheduledTimeOutcome } from "../../operator/src/dispatch/scheduler.js";
import type { Db } from "../../operator/src/store/db.js";
import { getRunState, recordRuns } from "../../operator/src/store/runs.js";
import { advanceSchedule, getSchedule, putSchedule } from "../../operator/src/store/schedules.js";
import { openTestDb, waitFor, type TestDb } from "../support/index.js";

describe("the scheduler", () => {
  let store: TestDb | undefined;
  let db: Db;

  beforeAll(async () => {
    store = await openTestDb("postgres", "scheduler");
    db = store.db;
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  it("neither skips (Forbid) nor cancels (Replace) the run of a time a late replica fired before the schedule moved to it", async () => {
    // Times two seconds apart, long past: t1 is due; t2 is when the fixed clock stands (plus half a second).
    const t1 = new Date(Math.floor(Date.now() / 2000) * 2000 - 60_000);
    const t2 = new Date(t1.getTime() + 2000);
    const t3 = new Date(t1.getTime() + 4000);
    const run = async (key: string, time: Date): Promise<string> => {
      const [r] = await recordRuns(db, [{ task: "race", idempotencyKey: scheduleRunKey(key, time), namespace: "default" }], { retentionSeconds: 0 });
      return r!.run.id;
    };
    const race = async (policy: ConcurrencyPolicy): Promise<{ key: string; late: string }> => {
      const key = `${policy.toLowerCase()}-${randomUUID().slice(0, 8)}`;
      const spec = { namespace: "default", key, task: "race", schedule: "*/2 * * * * *", timeZone: "UTC", parameters: undefined, concurrencyPolicy: policy,
        suspend: false, startingDeadlineSeconds: undefined, priority: undefined, concurrencyKey: undefined, rateLimitKey: undefined };
      await putSchedule(db, spec, t1);
      const read = { schedule: spec.schedule, timeZone: "UTC", next: t1 };
      // Replica A fires t1 on time and moves the schedule to t2; replica B read the row (due t1) before that, but looked
      // at the clock only after t2 had come: it fired t2, and its compare-and-set found the row moved. What is left:
      // next t2, last t2 with its run, still going.
      expect(await advanceSchedule(db, { namespace: "default", key, read, fired: { time: t1, runId: await run(key, t1) }, next: t2 })).toBe(true);
      const late = await run(key, t2);
      expect(await advanceSchedule(db, { namespace: "default", key, read, fired: { time: t2, runId: late }, next: t3 })).toBe(false);
      expect(await getSchedule(db, "default", key)).toMatchObject({ nextScheduleTime: t2.toISOString(), lastScheduleTime: t2.toISOString(), lastRunId: late });
      return { key, late };
    };
    const replace = await race("Replace");
    const forbid = await race("Forbid");

    const cancelled: string[] = [];
    const times: [string, ScheduledTimeOutcome, number][] = [];
    const scheduler = startScheduler(
      {
        db,
        submit: (bodies) => recordRuns(db, bodies, { retentionSeconds: 0 }).then((rs) => rs.map(({ run, created }) => ({ run, created }))),
        cancel: async (id) => {
          cancelled.push(id);
          await db.query("UPDATE runs SET state = 'CANCELLED', finished_at = now() WHERE id = $1", [id]);
          return { kind: "not-found" };
        },
        onTimes: (task, outcome, count) => times.push([task, outcome, count]),
      },
      { now: () => t2.getTime() + 500, maxSleepMs: 50 },
      pino({ level: "silent" }),
    );
    try {
      for (const { key } of [replace, forbid]) {
        await waitFor(`schedule ${key} to move past t2`, async () => ((await getSchedule(db, "default", key))?.nextScheduleTime === t3.toISOString() ? true : undefined));
      }
    } finally {
      await scheduler.stop();
    }
    // t2's run is t2's own: it goes on, and stays the schedule's last run.
    expect(cancelled).toEqual([]);
    expect(await getRunState(db, replace.late)).not.toBe("CANCELLED");
    for (const { key, late } of [replace, forbid]) {
      expect(await getSchedule(db, "default", key)).toMatchObject({ lastScheduleTime: t2.toISOString(), lastRunId: late });
    }
    // Nothing was skipped: t1 and t2 each started a run (counted by the replicas that made them, not here).
    expect(times).toEqual([]);
  });
});
