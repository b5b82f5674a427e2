import { statesBefore, type Run, type RunEvent, type RunEventType, type RunProgressMessage } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { json, stateList, toStored, type RunRow } from "./rows.js";

/**
 * Locks the runs with these ids for the rest of the transaction, skipping
 * (not waiting for) any that another transaction holds: waiting while already
 * holding other runs could deadlock with it (a dispatch marking its runs
 * `PENDING`, the sweeper, another replica's batch). Answers the ids locked;
 * unknown runs are not among them.
 */
export async function lockRuns(tx: Queryable, ids: readonly string[]): Promise<Set<string>> {
  const rows = await tx.query<{ id: string }>("SELECT id FROM runs WHERE id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED", [uuidArray(ids)]);
  return new Set(rows.map((r) => r.id));
}

/** What a worker reports about a run: a state event, or a progress report. */
export type WorkerEvent = RunEvent | RunProgressMessage;

/**
 * Applies workers' events to their runs, each only if its transition is
 * allowed: a terminal run never changes, and a late or duplicated event (an
 * older attempt's) never moves a run backwards. Events of one run are applied
 * in the order given; different runs in any order. A progress report changes
 * only `progress`, and only while the run is RUNNING that attempt (one after
 * the outcome is ignored). Answers, per event, the
 * run just after it, or undefined when that event changed nothing. Run ids
 * must be UUIDs (checked when events are parsed; throws otherwise).
 *
 * One statement per round and event type: round k holds each run's k-th
 * event of the list, so a run is updated at most once per statement. Give
 * more than one event only inside a transaction, so they commit (and fail)
 * together; on PostgreSQL only events of runs it locked ({@link lockRuns}),
 * so it never waits for one run while holding others.
 */
export async function applyEvents(q: Queryable, events: readonly WorkerEvent[]): Promise<(Run | undefined)[]> {
  const after: (Run | undefined)[] = events.map(() => undefined);
  for (const round of roundsOf(events)) {
    for (const [type, indexes] of round) {
      const records = JSON.stringify(indexes.map((i) => toRecord(events[i]!, i)));
      const rows = await q.query<RunRow & { event_index: number }>(sqlOf(type), [records, uuidArray(indexes.map((i) => events[i]!.runId))]);
      for (const row of rows) after[row.event_index] = toStored(row).run;
    }
  }
  return after;
}

/** The events (by index) of one round, by type. */
type Round = Map<WorkerEvent["type"], number[]>;

/** Splits the events (by index) into rounds: the k-th event of each run goes into round k, grouped by type. */
function roundsOf(events: readonly WorkerEvent[]): Round[] {
  const rounds: Round[] = [];
  const seen = new Map<string, number>();
  events.forEach((e, i) => {
    const k = seen.get(e.runId) ?? 0;
    seen.set(e.runId, k + 1);
    const round = (rounds[k] ??= new Map());
    const indexes = round.get(e.type);
    if (indexes) indexes.push(i);
    else round.set(e.type, [i]);
  });
  return rounds;
}

/** One event as a row of the `v` record set below. Optional values are null; JSON goes as text so `jsonb` parses it exactly once. */
function toRecord(e: WorkerEvent, index: number): Record<string, unknown> {
  if (e.type === "PROGRESS") {
    return { event_index: index, id: e.runId, attempt: e.attempt, at: e.progress.updatedAt, worker_id: e.workerId, progress: JSON.stringify(e.progress) };
  }
  const error =
    e.type === "FAILED"
      ? JSON.stringify(e.error ?? { type: "Error", message: "the run failed (the worker gave no error)" })
      : e.error
        ? JSON.stringify(e.error)
        : null;
  return {
    event_index: index,
    id: e.runId,
    attempt: e.attempt,
    at: e.at,
    worker_id: e.workerId,
    result: json(e.result),
    result_ref: e.resultRef ?? null,
    error,
    retry_at: e.retryAt ?? null,
    cached: e.cached ?? null,
    cache_key: e.cacheKey ?? null,
    progress: null,
    started_at: e.startedAt ?? null,
  };
}

const RECORD =
  "v(event_index integer, id uuid, attempt integer, at timestamptz, worker_id text, result text, result_ref text, error text," +
  " retry_at timestamptz, cached boolean, cache_key text, progress text, started_at timestamptz)";

// An outcome names its try's start (a worker of an older version does not): the record has it even when the
// outcome is recorded before that try's RUNNING (two replicas each took one of the two events).
const STARTED = "started_at = COALESCE(v.started_at, r.started_at)";

/** What each event type sets besides `state`, `attempts` and `updated_at`, and what it needs beyond the state check. */
const BY_TYPE: Record<RunEventType, { set: string[]; guard?: string }> = {
  RUNNING: {
    // A new try starts without the progress an earlier one reported.
    set: ["started_at = v.at", "worker_id = v.worker_id", "retry_at = NULL", "progress = NULL"],
    // Only a new attempt starts a run, in any state before: a RUNNING of the same (or an older) attempt is a
    // duplicate or a straggler. (For a run waiting for a dispatch, the general guard below already asks this.)
    guard: "r.attempts < v.attempt",
  },
  AWAITING_RETRY: {
    // With a time, the dispatcher sends the next try then (and `scheduledAt` says when);
    // without one, the worker retries on its own and the sweeper leaves the run alone.
    set: [
      "error = v.error::jsonb",
      "worker_id = v.worker_id",
      "retry_at = v.retry_at",
      "scheduled_at = COALESCE(v.retry_at, r.scheduled_at)",
      STARTED,
    ],
    guard: "r.attempts <= v.attempt",
  },
  COMPLETED: {
    set: [
      "result = v.result::jsonb",
      "result_ref = v.result_ref",
      "error = NULL",
      "retry_at = NULL",
      "finished_at = v.at",
      "worker_id = v.worker_id",
      // Set only when the worker said (a completion from before caching existed says nothing).
      "cached = COALESCE(v.cached, r.cached)",
      "cache_key = COALESCE(v.cache_key, r.cache_key)",
      STARTED,
    ],
  },
  FAILED: { set: ["error = v.error::jsonb", "retry_at = NULL", "finished_at = v.at", "worker_id = v.worker_id", STARTED] },
  CANCELLED: { set: ["finished_at = v.at", "retry_at = NULL", STARTED] },
};

/**
 * The guarded multi-row UPDATE per event type; its parameters are the JSON array of records and their run
 * ids. The ids are redundant but visible to the planner, which else guesses 100 records and may scan every
 * open run for a hash join rather than look the few up by key.
 */
const UPDATES = Object.fromEntries(
  Object.entries(BY_TYPE).map(([type, { set, guard }]) => {
    // A run waiting for a dispatch counts its earlier tries in `attempts`; that dispatch's tries are numbered
    // above it. So an event numbered at or below is an older dispatch's straggler (e.g. after a manual retry).
    const guards = [
      `r.state IN (${stateList(statesBefore(type as RunEventType))})`,
      "(r.state NOT IN ('SCHEDULED', 'PENDING') OR r.attempts < v.attempt)",
      ...(guard ? [guard] : []),
    ];
    const sets = [`state = ${stateList([type as RunEventType])}`, "attempts = GREATEST(r.attempts, v.attempt)", "updated_at = now()", ...set];
    const sql =
      `UPDATE runs AS r SET ${sets.join(", ")} FROM jsonb_to_recordset($1::jsonb) AS ${RECORD}` +
      ` WHERE r.id = ANY($2::uuid[]) AND r.id = v.id AND ${guards.join(" AND ")} RETURNING r.*, v.event_index`;
    return [type, sql];
  }),
) as Record<RunEventType, string>;

/**
 * A progress report: only while the run is RUNNING the attempt that reported it (so never after its outcome,
 * nor from an older try), and never older than the report it replaces (a report the database refused once
 * comes back later, after newer ones). `updated_at` stays: it says when the run's state last changed.
 */
const PROGRESS_UPDATE =
  `UPDATE runs AS r SET progress = v.progress::jsonb FROM jsonb_to_recordset($1::jsonb) AS ${RECORD}` +
  " WHERE r.id = ANY($2::uuid[]) AND r.id = v.id AND r.state = 'RUNNING' AND r.attempts = v.attempt" +
  " AND (r.progress IS NULL OR (r.progress->>'updatedAt')::timestamptz <= v.at) RETURNING r.*, v.event_index";

const sqlOf = (type: WorkerEvent["type"]): string => (type === "PROGRESS" ? PROGRESS_UPDATE : UPDATES[type]);
