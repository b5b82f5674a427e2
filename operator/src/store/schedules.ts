import type { ConcurrencyPolicy, Json, Schedule } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
import { iso, json } from "./rows.js";

/** A row of `schedules` as both drivers return it. */
export interface ScheduleRow {
  namespace: string;
  key: string;
  task: string;
  schedule: string;
  time_zone: string;
  parameters: Json | null;
  concurrency_policy: ConcurrencyPolicy;
  suspend: boolean;
  starting_deadline_seconds: number | null;
  priority: number | null;
  concurrency_key: string | null;
  rate_limit_key: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  last_schedule_time: Date | string | null;
  last_run_id: string | null;
  next_schedule_time: Date | string | null;
}

/** What a `PUT /v1/schedules/:key` asks for, defaults applied. */
export interface ScheduleSpec {
  namespace: string;
  key: string;
  task: string;
  schedule: string;
  timeZone: string;
  parameters: Json | undefined;
  concurrencyPolicy: ConcurrencyPolicy;
  suspend: boolean;
  startingDeadlineSeconds: number | undefined;
  priority: number | undefined;
  concurrencyKey: string | undefined;
  rateLimitKey: string | undefined;
}

const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

/** The API's view of a row. */
export function toSchedule(r: ScheduleRow): Schedule {
  return {
    key: r.key,
    namespace: r.namespace,
    task: r.task,
    schedule: r.schedule,
    timeZone: r.time_zone,
    parameters: r.parameters ?? null,
    concurrencyPolicy: r.concurrency_policy,
    suspend: r.suspend,
    startingDeadlineSeconds: r.starting_deadline_seconds,
    priority: r.priority,
    concurrencyKey: r.concurrency_key,
    rateLimitKey: r.rate_limit_key,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    lastScheduleTime: isoOrNull(r.last_schedule_time),
    lastRunId: r.last_run_id,
    nextScheduleTime: isoOrNull(r.next_schedule_time),
  };
}

/**
 * Creates or replaces a schedule. `next` is when it would next fire if its
 * timing were new (null while suspended); it is taken only when the timing
 * did change (the cron, the time zone or `suspend`, or a new schedule): a
 * controller that PUTs the same schedule again on every resync must not push
 * a time that is due but not yet fired past it. `updatedAt` moves only when
 * something changed; `lastScheduleTime` and `lastRunId` are kept (they are
 * history, as a CronJob's status is). One statement, so two PUTs at once
 * leave one of them whole.
 */
export async function putSchedule(db: Queryable, spec: ScheduleSpec, next: Date | null): Promise<{ schedule: Schedule; created: boolean }> {
  const rows = await db.query<ScheduleRow & { created: boolean }>(
    `INSERT INTO schedules AS s (namespace, key, task, schedule, time_zone, parameters, concurrency_policy, suspend,
                                 starting_deadline_seconds, priority, next_schedule_time, concurrency_key, rate_limit_key)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9::integer, $10::smallint, $11::timestamptz, $12, $13)
     ON CONFLICT (namespace, key) DO UPDATE SET
       task = EXCLUDED.task, schedule = EXCLUDED.schedule, time_zone = EXCLUDED.time_zone, parameters = EXCLUDED.parameters,
       concurrency_policy = EXCLUDED.concurrency_policy, suspend = EXCLUDED.suspend,
       starting_deadline_seconds = EXCLUDED.starting_deadline_seconds, priority = EXCLUDED.priority,
       concurrency_key = EXCLUDED.concurrency_key, rate_limit_key = EXCLUDED.rate_limit_key,
       next_schedule_time = CASE
         WHEN (s.schedule, s.time_zone, s.suspend) = (EXCLUDED.schedule, EXCLUDED.time_zone, EXCLUDED.suspend) THEN s.next_schedule_time
         ELSE EXCLUDED.next_schedule_time END,
       updated_at = CASE
         WHEN (s.task, s.schedule, s.time_zone, s.parameters, s.concurrency_policy, s.suspend, s.starting_deadline_seconds, s.priority,
               s.concurrency_key, s.rate_limit_key)
              IS NOT DISTINCT FROM (EXCLUDED.task, EXCLUDED.schedule, EXCLUDED.time_zone, EXCLUDED.parameters, EXCLUDED.concurrency_policy,
                                    EXCLUDED.suspend, EXCLUDED.starting_deadline_seconds, EXCLUDED.priority,
                                    EXCLUDED.concurrency_key, EXCLUDED.rate_limit_key) THEN s.updated_at
         ELSE now() END
     RETURNING *, (xmax = 0) AS created`,
    [
      spec.namespace, spec.key, spec.task, spec.schedule, spec.timeZone, json(spec.parameters), spec.concurrencyPolicy, spec.suspend,
      spec.startingDeadlineSeconds ?? null, spec.priority ?? null, next?.toISOString() ?? null,
      spec.concurrencyKey ?? null, spec.rateLimitKey ?? null,
    ],
  );
  const row = rows[0]!;
  return { schedule: toSchedule(row), created: row.created };
}

/** The schedule `key` of `namespace`, or undefined. */
export async function getSchedule(db: Queryable, namespace: string, key: string): Promise<Schedule | undefined> {
  const rows = await db.query<ScheduleRow>("SELECT * FROM schedules WHERE namespace = $1 AND key = $2", [namespace, key]);
  return rows[0] ? toSchedule(rows[0]) : undefined;
}

/** The schedules of `namespace` (of every namespace when undefined), by namespace and key. */
export async function listSchedules(db: Queryable, namespace: string | undefined): Promise<Schedule[]> {
  const rows =
    namespace === undefined
      ? await db.query<ScheduleRow>("SELECT * FROM schedules ORDER BY namespace, key")
      : await db.query<ScheduleRow>("SELECT * FROM schedules WHERE namespace = $1 ORDER BY key", [namespace]);
  return rows.map(toSchedule);
}

/** Deletes the schedule; answers whether there was one. Runs it started are left as they are. */
export async function deleteSchedule(db: Queryable, namespace: string, key: string): Promise<boolean> {
  const rows = await db.query<{ key: string }>("DELETE FROM schedules WHERE namespace = $1 AND key = $2 RETURNING key", [namespace, key]);
  return rows.length > 0;
}

/** Up to `limit` schedules whose next time is at or before `now`, the most overdue first. */
export async function dueSchedules(db: Queryable, now: Date, limit: number): Promise<ScheduleRow[]> {
  return db.query<ScheduleRow>(
    "SELECT * FROM schedules WHERE next_schedule_time <= $1::timestamptz ORDER BY next_schedule_time, namespace, key LIMIT $2",
    [now.toISOString(), limit],
  );
}

/** The earliest next time of any schedule, or undefined when none will fire (none, or all suspended). */
export async function earliestScheduleTime(db: Queryable): Promise<Date | undefined> {
  const rows = await db.query<{ t: Date | string | null }>("SELECT min(next_schedule_time) AS t FROM schedules");
  const t = rows[0]?.t ?? null;
  return t === null ? undefined : new Date(t);
}

/** What one firing decided for one due time of a schedule (see {@link advanceSchedule}). */
export interface Advance {
  namespace: string;
  key: string;
  /** The row's timing as read: the update holds only if it is still so (no PUT changed it, no other replica advanced it). */
  read: { schedule: string; timeZone: string; next: Date };
  /** The time that started a run, and that run; undefined when the time was skipped. */
  fired: { time: Date; runId: string } | undefined;
  /** The next time to fire. */
  next: Date | null;
}

/**
 * Records a firing, as a compare-and-set: `next_schedule_time` moves only
 * from the value read (so of two replicas firing the same time, one moves it,
 * and a PUT that changed the timing meanwhile wins), and `last_schedule_time`
 * (with `last_run_id`) only forward. Answers whether this call moved
 * `next_schedule_time`.
 */
export async function advanceSchedule(db: Queryable, a: Advance): Promise<boolean> {
  const time = a.fired?.time.toISOString() ?? null;
  const runId = a.fired?.runId ?? null;
  // Each statement is atomic on the row: the second only runs for a replica that lost the race, or a PUT that won it.
  const forward = "$3::timestamptz IS NOT NULL AND (last_schedule_time IS NULL OR last_schedule_time < $3::timestamptz)";
  const advanced = await db.query(
    `UPDATE schedules SET next_schedule_time = $8::timestamptz,
       last_schedule_time = CASE WHEN ${forward} THEN $3::timestamptz ELSE last_schedule_time END,
       last_run_id = CASE WHEN ${forward} THEN $4::uuid ELSE last_run_id END
     WHERE namespace = $1 AND key = $2 AND next_schedule_time = $5::timestamptz AND schedule = $6 AND time_zone = $7
     RETURNING key`,
    [a.namespace, a.key, time, runId, a.read.next.toISOString(), a.read.schedule, a.read.timeZone, a.next?.toISOString() ?? null],
  );
  if (advanced.length > 0) return true;
  if (time !== null) {
    await db.query(
      `UPDATE schedules SET last_schedule_time = $3::timestamptz, last_run_id = $4::uuid WHERE namespace = $1 AND key = $2 AND ${forward}`,
      [a.namespace, a.key, time, runId],
    );
  }
  return false;
}
