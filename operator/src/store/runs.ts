import { randomUUID } from "node:crypto";
import { PRIORITY, type CreateRunBody, type Run, type RunState } from "@offload/sdk/internal";
import { cacheSlot, findCacheHits, type CacheHit } from "./cache.js";
import { encodeCursor, type CursorKey } from "./cursor.js";
import type { Db, Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { CHUNK, DEFAULT_NAMESPACE, isoText, toStored, type RunRow, type StoredRun } from "./rows.js";

export type { StoredRun } from "./rows.js";

/** The namespace a body records its run in. */
const nsOf = (b: CreateRunBody): string => b.namespace ?? DEFAULT_NAMESPACE;

/** The outcome of recording one run. */
export interface Recorded extends StoredRun {
  /** False when an earlier run with the same idempotency key was returned instead. */
  created: boolean;
  /**
   * True when it is due now and should be published straight away: it was recorded `PENDING` with a row in the
   * dispatch outbox, which {@link confirmDispatched} removes once JetStream has its task message.
   */
  due: boolean;
  /** True when it was recorded held: due now, of a limited task, it waits in the run API for admission. */
  held: boolean;
}

/** What recording a new run answers of it: what the database decided. */
interface FreshRow {
  id: string;
  state: RunState;
  created_at: string;
  scheduled_at: string;
  due: boolean;
  held: boolean;
}

/**
 * A run just inserted, as {@link toStored} would read it back: what the body said, the defaults of the columns it
 * left out (no attempts, no worker, dispatch 0), and the row's state and times. Built rather than read back because
 * parsing every column of every new row (`RETURNING *`) was the run API's largest cost of a batch after the
 * statement itself. `parameters` and `traceContext` are the values sent; a later read gives the same values back
 * from jsonb, whose objects list their keys in its own order.
 */
function freshRun(b: CreateRunBody, r: FreshRow, hit: CacheHit | undefined): StoredRun {
  const createdAt = r.created_at;
  return {
    dispatch: 0,
    timeoutSeconds: b.timeoutSeconds ?? null,
    run: {
      id: r.id,
      task: b.task,
      state: r.state,
      parameters: b.parameters ?? null,
      attempts: 0,
      createdAt,
      scheduledAt: r.scheduled_at,
      startedAt: null,
      // A cache hit is recorded finished as it is created; every run's updated_at starts as its created_at.
      finishedAt: hit ? createdAt : null,
      updatedAt: createdAt,
      result: hit?.result ?? null,
      resultRef: hit?.resultRef ?? null,
      error: null,
      cacheKey: b.cacheKey ?? null,
      cached: hit !== undefined,
      idempotencyKey: b.idempotencyKey ?? null,
      workerId: null,
      namespace: nsOf(b),
      priority: b.priority ?? PRIORITY.default,
      concurrencyKey: b.concurrencyKey ?? null,
      rateLimitKey: b.rateLimitKey ?? null,
      waitingFor: null,
      ...(b.traceContext ? { traceContext: b.traceContext } : {}),
    },
  };
}

/**
 * Records runs, all or none (if it throws, none), and answers them in the order given. A run
 * whose idempotency key is already taken (by an earlier call, a concurrent
 * one, or an earlier entry of the same batch) is not recorded again: the
 * existing run is answered with `created: false`. A run due now whose
 * `cacheKey` has an unexpired completed run is recorded `COMPLETED` with
 * `cached: true` and that run's result, and never dispatched. A run scheduled
 * for later is recorded `SCHEDULED`. One due now is recorded `PENDING` with a
 * row in the dispatch outbox (`due`), to be published; except one of a task in
 * `limited`: it is recorded held, `PENDING` with no `published_at`, for
 * admission to dispatch when the task's limits allow. Completed runs older than `retentionSeconds` (0: no
 * limit) lend no result: retention is about to delete them.
 */
export async function recordRuns(
  db: Db,
  bodies: readonly CreateRunBody[],
  opts: { retentionSeconds: number; limited?: ReadonlySet<string> },
): Promise<Recorded[]> {
  const ids = bodies.map(() => randomUUID());
  const now = Date.now();
  // A run scheduled for later asks for a result computed then, not the one cached now.
  const cacheable = (b: CreateRunBody): b is CreateRunBody & { cacheKey: string } =>
    b.cacheKey !== undefined && (b.scheduledAt === undefined || Date.parse(b.scheduledAt) <= now);
  const work = async (q: Queryable): Promise<Recorded[]> => {
    const hits = await findCacheHits(q, bodies.filter(cacheable).map((b) => ({ namespace: nsOf(b), task: b.task, cacheKey: b.cacheKey })), opts);
    const inserted = new Map<string, Recorded>();
    for (let start = 0; start < bodies.length; start += CHUNK) {
      const chunk = bodies.slice(start, start + CHUNK);
      const hitOf = chunk.map((b) => (cacheable(b) ? hits.get(cacheSlot(nsOf(b), b.task, b.cacheKey)) : undefined));
      // The rows go as one JSON parameter, spread into columns by jsonb_to_recordset: one short statement whatever
      // the batch's size, where a VALUES list of 17 placeholders a row made hundreds of kilobytes of SQL for
      // PostgreSQL to parse, and for us to build, per batch. An absent key or a JSON null is SQL NULL.
      const rows = chunk.map((b, i) => {
        const hit = hitOf[i];
        return {
          id: ids[start + i], task: b.task, parameters: b.parameters, idempotency_key: b.idempotencyKey, scheduled_at: b.scheduledAt,
          timeout_seconds: b.timeoutSeconds, cache_key: b.cacheKey, cache_expires_in_seconds: b.cacheExpiresInSeconds,
          cached: hit !== undefined, result: hit?.result, result_ref: hit?.resultRef, namespace: nsOf(b), trace_context: b.traceContext,
          priority: b.priority ?? PRIORITY.default, concurrency_key: b.concurrencyKey, rate_limit_key: b.rateLimitKey,
          limited: opts.limited?.has(b.task) ?? false,
        };
      });
      // now() is the transaction's start: one creation time for a whole batch, and due == true exactly when not scheduled.
      // Only what the caller cannot know comes back; the rest of each new run is what it sent (see freshRun).
      // A run due now (not cached, not held) is recorded PENDING, with its row in the dispatch outbox in the same
      // statement: from then on its publish cannot be lost, so the caller's answer need not wait for it.
      const got = await q.query<FreshRow>(
        `WITH r AS (
           SELECT r.*, COALESCE(r.scheduled_at, now()) <= now() AS due_now
           FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, task text, parameters jsonb, idempotency_key text, scheduled_at timestamptz,
                  timeout_seconds double precision, cache_key text, cache_expires_in_seconds double precision, cached boolean,
                  result jsonb, result_ref text, namespace text, trace_context jsonb, priority smallint, concurrency_key text,
                  rate_limit_key text, limited boolean)
         ), inserted AS (
           INSERT INTO runs (id, task, state, parameters, created_at, scheduled_at, idempotency_key, timeout_seconds, cache_key,
                             cache_expires_in_seconds, cached, result, result_ref, finished_at, namespace, trace_context,
                             priority, concurrency_key, rate_limit_key, published_at)
           SELECT r.id, r.task,
                  CASE WHEN r.cached THEN 'COMPLETED' WHEN r.due_now THEN 'PENDING' ELSE 'SCHEDULED' END,
                  r.parameters, now(), COALESCE(r.scheduled_at, now()), r.idempotency_key, r.timeout_seconds, r.cache_key,
                  r.cache_expires_in_seconds, r.cached, r.result, r.result_ref, CASE WHEN r.cached THEN now() END, r.namespace,
                  r.trace_context, r.priority, r.concurrency_key, r.rate_limit_key,
                  CASE WHEN NOT r.cached AND r.due_now AND NOT r.limited THEN now() END
           FROM r
           ON CONFLICT (namespace, idempotency_key) DO NOTHING
           RETURNING id, state, created_at, scheduled_at, published_at
         ), outbox AS (
           INSERT INTO dispatch_outbox (run_id) SELECT id FROM inserted WHERE state = 'PENDING' AND published_at IS NOT NULL
         )
         SELECT id, state, ${isoText("created_at")} AS created_at, ${isoText("scheduled_at")} AS scheduled_at,
                state = 'PENDING' AND published_at IS NOT NULL AS due,
                state = 'PENDING' AND published_at IS NULL AS held
         FROM inserted`,
        [JSON.stringify(rows)],
        { name: "offload.record-runs.v2" },
      );
      const byId = new Map(got.map((r) => [r.id, r]));
      chunk.forEach((b, i) => {
        const id = ids[start + i]!;
        const r = byId.get(id);
        if (r) inserted.set(id, { ...freshRun(b, r, hitOf[i]), created: true, due: r.due, held: r.held });
      });
    }
    // Idempotency keys are unique per namespace, so a taken key is looked up with its namespace.
    const slot = (namespace: string, key: string): string => JSON.stringify([namespace, key]);
    const missing = [
      ...new Map(
        bodies
          .filter((b, i) => !inserted.has(ids[i]!) && b.idempotencyKey)
          .map((b) => [slot(nsOf(b), b.idempotencyKey!), [nsOf(b), b.idempotencyKey!]] as const),
      ).values(),
    ];
    const byKey = new Map<string, StoredRun>();
    for (let start = 0; start < missing.length; start += CHUNK) {
      const pairs = missing.slice(start, start + CHUNK);
      const got = await q.query<RunRow>(
        `SELECT * FROM runs WHERE (namespace, idempotency_key) IN (${pairs.map((_, k) => `($${2 * k + 1}::text, $${2 * k + 2}::text)`).join(", ")})`,
        pairs.flat(),
      );
      for (const r of got) byKey.set(slot(r.namespace, r.idempotency_key!), toStored(r));
    }
    return bodies.map((b, i) => {
      const mine = inserted.get(ids[i]!);
      if (mine) return mine;
      const existing = b.idempotencyKey ? byKey.get(slot(nsOf(b), b.idempotencyKey)) : undefined;
      // Only a conflict on the key skips a row, and then the row holding the key exists.
      if (!existing) throw new Error(`run for ${b.task} was neither recorded nor found by its idempotency key`);
      return { ...existing, created: false, due: false, held: false };
    });
  };
  // One INSERT statement is atomic by itself: a transaction (BEGIN and COMMIT, two more round trips) is only
  // needed when cache lookups must agree with the insert, or when there may be more than one statement (a batch
  // past one chunk, or idempotency keys to look up). Either way, a call that throws has recorded nothing, unless
  // the connection dropped after COMMIT (or the one statement) was sent and before its reply.
  const oneStatement = bodies.length <= CHUNK && !bodies.some((b) => cacheable(b) || b.idempotencyKey !== undefined);
  return oneStatement ? work(db) : db.transaction(work);
}

/**
 * Marks published runs `PENDING`. Guarded: only a run still `SCHEDULED` moves,
 * so a worker's event that got there first is never undone. Answers, for each
 * run that moved, its new `updatedAt`: nothing else of it changed
 * (`published_at` is not part of a run), and a run still `SCHEDULED` is as it
 * was recorded, so the caller has the rest. `ids` must be UUIDs.
 */
export async function markPending(db: Queryable, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.query<{ id: string; updated_at: string }>(
    `UPDATE runs SET state = 'PENDING', published_at = now(), updated_at = now()
     WHERE id = ANY($1::uuid[]) AND state = 'SCHEDULED' RETURNING id, ${isoText("updated_at")} AS updated_at`,
    [uuidArray(ids)],
    { name: "offload.mark-pending.v1" },
  );
  return new Map(rows.map((r) => [r.id, r.updated_at]));
}

/** The run with this id, or undefined. `id` must be a UUID. */
export async function getRun(db: Queryable, id: string): Promise<Run | undefined> {
  const rows = await db.query<RunRow>("SELECT * FROM runs WHERE id = $1::uuid", [id]);
  return rows[0] ? toStored(rows[0]).run : undefined;
}

/** The namespace of the run with this id, or undefined: what authorizing a call about it needs. `id` must be a UUID. */
export async function getRunNamespace(db: Queryable, id: string): Promise<string | undefined> {
  const rows = await db.query<{ namespace: string }>("SELECT namespace FROM runs WHERE id = $1::uuid", [id]);
  return rows[0]?.namespace;
}

/** Just the state of the run with this id, or undefined; cheaper than {@link getRun} for polling. `id` must be a UUID. */
export async function getRunState(db: Queryable, id: string): Promise<RunState | undefined> {
  const rows = await db.query<{ state: RunState }>("SELECT state FROM runs WHERE id = $1::uuid", [id]);
  return rows[0]?.state;
}

/** One page of runs, newest first; of one namespace when `namespace` is given. */
export async function listRuns(
  db: Queryable,
  q: { namespace?: string | undefined; task?: string | undefined; state?: RunState | undefined; limit: number; after?: CursorKey | undefined },
): Promise<{ runs: Run[]; nextCursor: string | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.namespace) where.push(`namespace = $${params.push(q.namespace)}`);
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
