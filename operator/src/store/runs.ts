import { randomUUID } from "node:crypto";
import { statesBefore, type CreateRunBody, type Json, type Run, type RunEvent, type RunState } from "@offload/sdk/internal";
import { encodeCursor, type CursorKey } from "./cursor.js";
import type { Db, Queryable } from "./db.js";

/** A row of `runs` as both drivers return it. */
interface RunRow {
  id: string;
  task: string;
  state: RunState;
  parameters: Json | null;
  attempts: number;
  created_at: Date | string;
  scheduled_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  result: Json | null;
  result_ref: string | null;
  error: { type: string; message: string } | null;
  cache_key: string | null;
  cached: boolean;
  idempotency_key: string | null;
  worker_id: string | null;
  dispatch: number;
}

/** A recorded run plus what dispatching it needs. */
export interface StoredRun {
  run: Run;
  /** Which dispatch of the run the next publish is (part of the message id). */
  dispatch: number;
}

/** The outcome of recording one run. */
export interface Recorded extends StoredRun {
  /** False when an earlier run with the same idempotency key was returned instead. */
  created: boolean;
  /** True when it is due now and should be published straight away. */
  due: boolean;
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

function toStored(r: RunRow): StoredRun {
  return {
    dispatch: r.dispatch,
    run: {
      id: r.id,
      task: r.task,
      state: r.state,
      parameters: r.parameters ?? null,
      attempts: r.attempts,
      createdAt: iso(r.created_at),
      scheduledAt: iso(r.scheduled_at),
      startedAt: isoOrNull(r.started_at),
      finishedAt: isoOrNull(r.finished_at),
      result: r.result ?? null,
      resultRef: r.result_ref,
      error: r.error,
      cacheKey: r.cache_key,
      cached: r.cached,
      idempotencyKey: r.idempotency_key,
      workerId: r.worker_id,
    },
  };
}

const json = (v: Json | undefined): string | null => (v === undefined ? null : JSON.stringify(v));
const placeholders = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `$${from + i}`).join(", ");
// States come from the protocol's fixed enum; checked anyway before they meet SQL.
const stateList = (states: readonly RunState[]): string =>
  states.map((s) => (/^[A-Z_]+$/.test(s) ? `'${s}'` : ((): never => { throw new Error(`bad state ${s}`); })())).join(", ");

// Rows per INSERT statement: 6 parameters each stays far below PostgreSQL's 65535.
const INSERT_CHUNK = 2000;

/**
 * Records runs (state `SCHEDULED`) in one transaction and answers them in the
 * order given. A run whose idempotency key is already taken (by an earlier
 * call, a concurrent one, or an earlier entry of the same batch) is not
 * recorded again: the existing run is answered with `created: false`.
 */
export async function recordRuns(db: Db, bodies: readonly CreateRunBody[]): Promise<Recorded[]> {
  const ids = bodies.map(() => randomUUID());
  const work = async (q: Queryable): Promise<Recorded[]> => {
    const inserted = new Map<string, Recorded>();
    for (let start = 0; start < bodies.length; start += INSERT_CHUNK) {
      const chunk = bodies.slice(start, start + INSERT_CHUNK);
      const params: unknown[] = [];
      const rows = chunk.map((b, i) => {
        const p = params.length + 1;
        params.push(ids[start + i], b.task, json(b.parameters), b.idempotencyKey ?? null, b.scheduledAt ?? null);
        // now() is the transaction's start: one creation time for a whole batch, and due == true exactly when not scheduled.
        return `($${p}::uuid, $${p + 1}, 'SCHEDULED', $${p + 2}::jsonb, now(), COALESCE($${p + 4}::timestamptz, now()), $${p + 3})`;
      });
      const got = await q.query<RunRow & { due: boolean }>(
        `INSERT INTO runs (id, task, state, parameters, created_at, scheduled_at, idempotency_key)
         VALUES ${rows.join(", ")}
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING *, scheduled_at <= now() AS due`,
        params,
      );
      for (const r of got) inserted.set(r.id, { ...toStored(r), created: true, due: r.due });
    }
    const missingKeys = [...new Set(bodies.filter((b, i) => !inserted.has(ids[i]!) && b.idempotencyKey).map((b) => b.idempotencyKey!))];
    const byKey = new Map<string, StoredRun>();
    for (let start = 0; start < missingKeys.length; start += INSERT_CHUNK) {
      const keys = missingKeys.slice(start, start + INSERT_CHUNK);
      const got = await q.query<RunRow>(`SELECT * FROM runs WHERE idempotency_key IN (${placeholders(1, keys.length)})`, keys);
      for (const r of got) byKey.set(r.idempotency_key!, toStored(r));
    }
    return bodies.map((b, i) => {
      const mine = inserted.get(ids[i]!);
      if (mine) return mine;
      const existing = b.idempotencyKey ? byKey.get(b.idempotencyKey) : undefined;
      // Only a conflict on the key skips a row, and then the row holding the key exists.
      if (!existing) throw new Error(`run for ${b.task} was neither recorded nor found by its idempotency key`);
      return { ...existing, created: false, due: false };
    });
  };
  return bodies.length === 1 ? work(db) : db.transaction(work);
}

/**
 * Marks published runs `PENDING`. Guarded: only a run still `SCHEDULED` moves,
 * so a worker's event that got there first is never undone. Answers the runs
 * that moved.
 */
export async function markPending(db: Queryable, ids: readonly string[]): Promise<Map<string, StoredRun>> {
  const out = new Map<string, StoredRun>();
  for (let start = 0; start < ids.length; start += INSERT_CHUNK) {
    const chunk = ids.slice(start, start + INSERT_CHUNK);
    const rows = await db.query<RunRow>(
      `UPDATE runs SET state = 'PENDING', published_at = now(), updated_at = now()
       WHERE id IN (${placeholders(1, chunk.length)}) AND state = 'SCHEDULED' RETURNING *`,
      chunk,
    );
    for (const r of rows) out.set(r.id, toStored(r));
  }
  return out;
}

/** The run with this id, or undefined. `id` must be a UUID. */
export async function getRun(db: Queryable, id: string): Promise<Run | undefined> {
  const rows = await db.query<RunRow>("SELECT * FROM runs WHERE id = $1::uuid", [id]);
  return rows[0] ? toStored(rows[0]).run : undefined;
}

/** One page of runs, newest first. */
export async function listRuns(
  db: Queryable,
  q: { task?: string | undefined; state?: RunState | undefined; limit: number; after?: CursorKey | undefined },
): Promise<{ runs: Run[]; nextCursor: string | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.task) where.push(`task = $${params.push(q.task)}`);
  if (q.state) where.push(`state = $${params.push(q.state)}`);
  if (q.after) where.push(`(created_at, id) < ($${params.push(q.after.createdAt)}::timestamptz, $${params.push(q.after.id)}::uuid)`);
  const rows = await db.query<RunRow & { cursor_ts: string }>(
    `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_ts FROM runs
     ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY created_at DESC, id DESC LIMIT $${params.push(q.limit + 1)}`,
    params,
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    runs: page.map((r) => toStored(r).run),
    nextCursor: rows.length > q.limit && last ? encodeCursor({ createdAt: last.cursor_ts, id: last.id }) : null,
  };
}

/**
 * Applies a worker's event to its run, if the transition is allowed: a
 * terminal run never changes, and a late or duplicated event (an older
 * attempt's) never moves a run backwards. Answers the updated run, or
 * undefined when the event changed nothing.
 */
export async function applyEvent(db: Queryable, e: RunEvent): Promise<Run | undefined> {
  const set = ["state = $2", "attempts = GREATEST(attempts, $3::integer)", "updated_at = now()"];
  const params: unknown[] = [e.runId, e.type, e.attempt];
  const p = (v: unknown): string => `$${params.push(v)}`;
  let guard = `state IN (${stateList(statesBefore(e.type))})`;
  switch (e.type) {
    case "RUNNING":
      set.push(`started_at = ${p(e.at)}::timestamptz`, `worker_id = ${p(e.workerId)}`);
      // A RUNNING of the same (or an older) attempt is a duplicate; only a new attempt restarts a run.
      guard += ` AND (state IN ('SCHEDULED', 'PENDING') OR attempts < $3::integer)`;
      break;
    case "AWAITING_RETRY":
      set.push(`error = ${p(e.error ? JSON.stringify(e.error) : null)}::jsonb`, `worker_id = ${p(e.workerId)}`);
      guard += " AND attempts <= $3::integer";
      break;
    case "COMPLETED":
      set.push(
        `result = ${p(json(e.result))}::jsonb`,
        `result_ref = ${p(e.resultRef ?? null)}`,
        "error = NULL",
        `finished_at = ${p(e.at)}::timestamptz`,
        `worker_id = ${p(e.workerId)}`,
      );
      if (e.cached !== undefined) set.push(`cached = ${p(e.cached)}`);
      if (e.cacheKey !== undefined) set.push(`cache_key = ${p(e.cacheKey)}`);
      break;
    case "FAILED":
      set.push(
        `error = ${p(JSON.stringify(e.error ?? { type: "Error", message: "the run failed (the worker gave no error)" }))}::jsonb`,
        `finished_at = ${p(e.at)}::timestamptz`,
        `worker_id = ${p(e.workerId)}`,
      );
      break;
    case "CANCELLED":
      set.push(`finished_at = ${p(e.at)}::timestamptz`);
      break;
  }
  const rows = await db.query<RunRow>(`UPDATE runs SET ${set.join(", ")} WHERE id = $1::uuid AND ${guard} RETURNING *`, params);
  return rows[0] ? toStored(rows[0]).run : undefined;
}

/**
 * Finds due runs still `SCHEDULED` (scheduled for later and now due, or
 * recorded but never published because the API died in between), locks them
 * with SKIP LOCKED so replicas share the work, hands them to `publish`, and
 * marks them `PENDING` once it resolves. Answers how many were published.
 */
export async function sweepDue(
  db: Db,
  opts: { republishAfterSeconds: number; limit: number },
  publish: (runs: StoredRun[]) => Promise<void>,
): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<RunRow>(
      `SELECT * FROM runs
       WHERE state = 'SCHEDULED' AND scheduled_at <= now()
         AND (scheduled_at > created_at OR created_at <= now() - make_interval(secs => $1::double precision))
       ORDER BY scheduled_at LIMIT $2
       FOR UPDATE SKIP LOCKED`,
      [opts.republishAfterSeconds, opts.limit],
    );
    if (rows.length === 0) return 0;
    await publish(rows.map(toStored));
    await markPending(tx, rows.map((r) => r.id));
    return rows.length;
  });
}
