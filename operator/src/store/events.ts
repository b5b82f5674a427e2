import { statesBefore, type Run, type RunEventType, type RunProgressMessage, type RunState, type RunEvent } from "@offload/sdk/internal";
import type { Db, Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { json, stateList, toStored, type RunRow } from "./rows.js";

/** What a worker reports about a run: a state event, or a progress report. */
export type WorkerEvent = RunEvent | RunProgressMessage;

/**
 * A run as an event left it. `id`, `task` and `state` are at hand; the whole
 * run is built on the first call of `run()`: most changes have no listener
 * that reads more (the whole row arrives as JSON text, and parsing it and its
 * timestamps for every event was a top frame of the run API under load).
 */
export interface RunChange {
  readonly id: string;
  readonly task: string;
  readonly state: RunState;
  run(): Run;
}

/** What {@link applyEventBatch} did with each event. */
export interface BatchOutcome {
  /** Per event, the run just after it, or undefined when it changed nothing or was not applied (see `held`). */
  changes: (RunChange | undefined)[];
  /**
   * The events (by index, in order) not applied because another transaction
   * held their run when the batch came to it, or the run is unknown; with the
   * first such event of a run, every later one of that run.
   */
  held: number[];
}

/**
 * Applies workers' events to their runs, each only if its transition is
 * allowed: a terminal run never changes, and a late or duplicated event (an
 * older attempt's) never moves a run backwards. Events of one run are applied
 * in the order given; different runs in any order. A progress report changes
 * only `progress`, and only while the run is RUNNING that attempt (one after
 * the outcome is ignored). Run ids must be UUIDs (checked when events are
 * parsed; throws otherwise).
 *
 * Never waits for a run another transaction holds (a dispatch marking it
 * `PENDING`, the sweeper, another replica's batch) when the events are of
 * several runs: waiting while holding other runs could deadlock with it. Such
 * a run's events are answered as held. Events of a single run wait for it.
 *
 * One statement for each round (round k holds each run's k-th event, of any
 * type): a batch where every run has one event, the common case, is one
 * statement, atomic alone. More rounds run in one transaction, so the batch
 * commits (and fails) as a whole.
 */
export async function applyEventBatch(db: Db, events: readonly WorkerEvent[]): Promise<BatchOutcome> {
  const rounds = roundsOf(events);
  const changes: (RunChange | undefined)[] = events.map(() => undefined);
  if (rounds.length === 0) return { changes, held: [] };
  // Events of one run (a lone event, at low load) wait for its row: holding no other, that cannot deadlock, and
  // it spares the retries of a held run. A run missing then is unknown, not held.
  const alone = rounds[0]!.length === 1;
  const sql = alone ? WAIT : SKIP_LOCKED;
  const apply = async (q: Queryable): Promise<Set<string>> => {
    const locked = await applyRound(q, events, rounds[0]!, changes, sql);
    // Rounds after the first are of runs the first locked: this transaction holds them, nothing can skip them.
    for (const round of rounds.slice(1)) await applyRound(q, events, round.filter((i) => locked.has(events[i]!.runId)), changes, sql);
    return locked;
  };
  const locked = rounds.length === 1 ? await apply(db) : await db.transaction(apply);
  const held = alone ? [] : events.flatMap((e, i) => (locked.has(e.runId) ? [] : [i]));
  return { changes, held };
}

/**
 * Applies the events of one run in order (see {@link applyEventBatch} for the
 * rules), waiting for the run if another transaction holds it: with only that
 * run at stake, waiting holds nothing else. Answers, per event, the run just
 * after it, or undefined when that event changed nothing (the run is unknown,
 * or the transition not allowed). Each event is its own statement.
 */
export async function applyEvents(q: Queryable, events: readonly WorkerEvent[]): Promise<(RunChange | undefined)[]> {
  if (new Set(events.map((e) => e.runId)).size > 1) throw new Error("applyEvents takes the events of one run (applyEventBatch takes many)");
  const changes: (RunChange | undefined)[] = events.map(() => undefined);
  for (const i of events.keys()) await applyRound(q, events, [i], changes, WAIT);
  return changes;
}

/**
 * How many statements {@link applyEventBatch} sends for these events: one per
 * round, and BEGIN and COMMIT around more than one. (Applied one at a time,
 * with {@link applyEvents}, they cost one each: fewer for a few events of few
 * runs, such as one run's RUNNING and COMPLETED.)
 */
export function batchStatements(events: readonly WorkerEvent[]): number {
  const rounds = roundsOf(events).length;
  return rounds <= 1 ? rounds : rounds + 2;
}

/** The events (by index) of each round: the k-th event of each run goes into round k. */
function roundsOf(events: readonly WorkerEvent[]): number[][] {
  const rounds: number[][] = [];
  const seen = new Map<string, number>();
  events.forEach((e, i) => {
    const k = seen.get(e.runId) ?? 0;
    seen.set(e.runId, k + 1);
    (rounds[k] ??= []).push(i);
  });
  return rounds;
}

/** The row of one run a round's statement answers: locked, and changed when `state` is set. */
interface RoundRow {
  id: string;
  task: string | null;
  state: RunState | null;
  /** The whole updated row, as `row_to_json` text: parsed only if someone asks ({@link RunChange}). */
  row: string | null;
}

/** Applies one round (at most one event per run); writes each change into `changes`; answers the runs it locked. */
async function applyRound(
  q: Queryable,
  events: readonly WorkerEvent[],
  round: readonly number[],
  changes: (RunChange | undefined)[],
  sql: string,
): Promise<Set<string>> {
  if (round.length === 0) return new Set();
  const records = JSON.stringify(round.map((i) => toRecord(events[i]!)));
  const rows = await q.query<RoundRow>(sql, [records, uuidArray(round.map((i) => events[i]!.runId))], { name: NAMES.get(sql) });
  const byRun = new Map(round.map((i) => [events[i]!.runId, i]));
  for (const r of rows) {
    if (r.state === null || r.task === null || r.row === null) continue;
    changes[byRun.get(r.id)!] = change(r.id, r.task, r.state, r.row);
  }
  return new Set(rows.map((r) => r.id));
}

function change(id: string, task: string, state: RunState, row: string): RunChange {
  let run: Run | undefined;
  return { id, task, state, run: () => (run ??= toStored(JSON.parse(row) as RunRow).run) };
}

/** One event as a row of the `v` record set below. Optional values are null; JSON goes as text so `jsonb` parses it exactly once. */
function toRecord(e: WorkerEvent): Record<string, unknown> {
  if (e.type === "PROGRESS") {
    return { type: e.type, id: e.runId, attempt: e.attempt, at: e.progress.updatedAt, worker_id: e.workerId, progress: JSON.stringify(e.progress) };
  }
  const error =
    e.type === "FAILED"
      ? JSON.stringify(e.error ?? { type: "Error", message: "the run failed (the worker gave no error)" })
      : e.error
        ? JSON.stringify(e.error)
        : null;
  return {
    type: e.type,
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
    started_at: e.startedAt ?? null,
  };
}

const RECORD =
  "v(type text, id uuid, attempt integer, at timestamptz, worker_id text, result text, result_ref text, error text," +
  " retry_at timestamptz, cached boolean, cache_key text, progress text, started_at timestamptz)";

// An outcome names its try's start (a worker of an older version does not): the record has it even when the
// outcome is recorded before that try's RUNNING (two replicas each took one of the two events).
const STARTED = "COALESCE(v.started_at, r.started_at)";

interface TypeRule {
  /** What the event sets, by column; the other columns keep their value. */
  set: Record<string, string>;
  /** When it applies. */
  guard: string;
}

/** The state check every state event passes, and `state`, `attempts` and `updated_at` that each sets. */
function stateRule(type: RunEventType, set: Record<string, string>, guard?: string): TypeRule {
  // A run waiting for a dispatch counts its earlier tries in `attempts`; that dispatch's tries are numbered
  // above it. So an event numbered at or below is an older dispatch's straggler (e.g. after a manual retry).
  const guards = [`r.state IN (${stateList(statesBefore(type))})`, "(r.state NOT IN ('SCHEDULED', 'PENDING') OR r.attempts < v.attempt)", ...(guard ? [guard] : [])];
  return {
    set: { state: stateList([type]), attempts: "GREATEST(r.attempts, v.attempt)", updated_at: "now()", ...set },
    guard: guards.join(" AND "),
  };
}

/** Per event type, what it changes and when. */
const RULES: Record<WorkerEvent["type"], TypeRule> = {
  RUNNING: stateRule(
    "RUNNING",
    // A new try starts without the progress an earlier one reported.
    { started_at: "v.at", worker_id: "v.worker_id", retry_at: "NULL", progress: "NULL" },
    // Only a new attempt starts a run, in any state before: a RUNNING of the same (or an older) attempt is a
    // duplicate or a straggler. (For a run waiting for a dispatch, the general guard already asks this.)
    "r.attempts < v.attempt",
  ),
  // With a time, the dispatcher sends the next try then (and `scheduledAt` says when);
  // without one, the worker retries on its own and the sweeper leaves the run alone.
  AWAITING_RETRY: stateRule(
    "AWAITING_RETRY",
    { error: "v.error::jsonb", worker_id: "v.worker_id", retry_at: "v.retry_at", scheduled_at: "COALESCE(v.retry_at, r.scheduled_at)", started_at: STARTED },
    "r.attempts <= v.attempt",
  ),
  COMPLETED: stateRule("COMPLETED", {
    result: "v.result::jsonb",
    result_ref: "v.result_ref",
    error: "NULL",
    retry_at: "NULL",
    finished_at: "v.at",
    worker_id: "v.worker_id",
    // Set only when the worker said (a completion from before caching existed says nothing).
    cached: "COALESCE(v.cached, r.cached)",
    cache_key: "COALESCE(v.cache_key, r.cache_key)",
    started_at: STARTED,
  }),
  FAILED: stateRule("FAILED", { error: "v.error::jsonb", retry_at: "NULL", finished_at: "v.at", worker_id: "v.worker_id", started_at: STARTED }),
  CANCELLED: stateRule("CANCELLED", { finished_at: "v.at", retry_at: "NULL", started_at: STARTED }),
  // A progress report: only while the run is RUNNING the attempt that reported it (so never after its outcome,
  // nor from an older try), and never older than the report it replaces (a report the database refused once
  // comes back later, after newer ones). `updated_at` stays: it says when the run's state last changed.
  PROGRESS: {
    set: { progress: "v.progress::jsonb" },
    guard: "r.state = 'RUNNING' AND r.attempts = v.attempt AND (r.progress IS NULL OR (r.progress->>'updatedAt')::timestamptz <= v.at)",
  },
};

/**
 * One statement for events of any types and distinct runs, each run's change
 * chosen by its event's type (a CASE per column). The CTE `l` locks the runs
 * first, skipping (or waiting for) those another transaction holds; only
 * locked runs are updated. It answers a row per locked run, with the change
 * when there was one. Parameters: the JSON array of records and their run
 * ids; the ids are redundant but visible to the planner, which else guesses
 * 100 records and may scan every open run for a hash join rather than look
 * the few up by key.
 */
function statement(lock: "SKIP LOCKED" | ""): string {
  const types = Object.keys(RULES) as WorkerEvent["type"][];
  const columns = [...new Set(types.flatMap((t) => Object.keys(RULES[t].set)))];
  const caseOf = (expr: (t: WorkerEvent["type"]) => string | undefined, otherwise: string): string =>
    `CASE v.type ${types.flatMap((t) => (expr(t) === undefined ? [] : [`WHEN '${t}' THEN ${expr(t)}`])).join(" ")} ELSE ${otherwise} END`;
  const sets = columns.map((c) => `${c} = ${caseOf((t) => RULES[t].set[c], `r.${c}`)}`);
  return (
    `WITH v AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS ${RECORD}),` +
    ` l AS (SELECT id FROM runs WHERE id = ANY($2::uuid[]) FOR UPDATE ${lock}),` +
    ` c AS (UPDATE runs AS r SET ${sets.join(", ")} FROM v` +
    ` WHERE r.id = ANY($2::uuid[]) AND r.id = v.id AND r.id IN (SELECT id FROM l) AND ${caseOf((t) => `(${RULES[t].guard})`, "false")}` +
    " RETURNING r.id, r.task, r.state, row_to_json(r)::text AS row)" +
    " SELECT l.id, c.task, c.state, c.row FROM l LEFT JOIN c ON c.id = l.id"
  );
}

const SKIP_LOCKED = statement("SKIP LOCKED");
const WAIT = statement("");
// Prepared once per connection: planning this statement cost PostgreSQL as much as running it (pg_stat_statements).
const NAMES = new Map([
  [SKIP_LOCKED, "offload.apply-events.skip-locked.v1"],
  [WAIT, "offload.apply-events.wait.v1"],
]);
