import { randomUUID } from "node:crypto";
import { PRIORITY, type CreateRunBody, type Run, type RunState } from "@offload/sdk/internal";
import { cacheSlot, findCacheHits } from "./cache.js";
import { encodeCursor, type CursorKey } from "./cursor.js";
import type { Db, Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { CHUNK, DEFAULT_NAMESPACE, iso, json, toStored, type RunRow, type StoredRun } from "./rows.js";

export type { StoredRun } from "./rows.js";

/** The namespace a body records its run in. */
const nsOf = (b: CreateRunBody): string => b.namespace ?? DEFAULT_NAMESPACE;

/** The outcome of recording one run. */
export interface Recorded extends StoredRun {
  /** False when an earlier run with the same idempotency key was returned instead. */
  created: boolean;
  /** True when it is due now and should be published straight away. */
  due: boolean;
  /** True when it was recorded held: due now, of a limited task, it waits in the run API for admission. */
  held: boolean;
}

/**
 * Records runs, all or none (if it throws, none), and answers them in the order given. A run
 * whose idempotency key is already taken (by an earlier call, a concurrent
 * one, or an earlier entry of the same batch) is not recorded again: the
 * existing run is answered with `created: false`. A run due now whose
 * `cacheKey` has an unexpired completed run is recorded `COMPLETED` with
 * `cached: true` and that run's result, and never dispatched; the others are
 * recorded `SCHEDULED`, except those due now of a task in `limited`: they are
 * recorded held, `PENDING` with no `published_at`, for admission to dispatch
 * when the task's limits allow. Completed runs older than `retentionSeconds` (0: no
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
      const params: unknown[] = [];
      const rows = chunk.map((b, i) => {
        const hit = cacheable(b) ? hits.get(cacheSlot(nsOf(b), b.task, b.cacheKey)) : undefined;
        const p = params.length + 1;
        params.push(
          ids[start + i], b.task, json(b.parameters), b.idempotencyKey ?? null, b.scheduledAt ?? null,
          b.timeoutSeconds ?? null, b.cacheKey ?? null, b.cacheExpiresInSeconds ?? null,
          hit !== undefined, hit ? json(hit.result ?? null) : null, hit?.resultRef ?? null, nsOf(b),
          b.traceContext ? JSON.stringify(b.traceContext) : null, b.priority ?? PRIORITY.default, b.concurrencyKey ?? null,
          b.rateLimitKey ?? null, opts.limited?.has(b.task) ?? false,
        );
        const [id, task, parameters, key, scheduled, timeout, cacheKey, expires, cached, result, resultRef, namespace, traceContext,
          priority, concurrencyKey, rateLimitKey, limited] = Array.from({ length: 17 }, (_, k) => `$${p + k}`);
        // now() is the transaction's start: one creation time for a whole batch, and due == true exactly when not scheduled.
        return `(${id}::uuid, ${task}, CASE WHEN ${cached}::boolean THEN 'COMPLETED'
          WHEN ${limited}::boolean AND COALESCE(${scheduled}::timestamptz, now()) <= now() THEN 'PENDING' ELSE 'SCHEDULED' END,
          ${parameters}::jsonb, now(),
          COALESCE(${scheduled}::timestamptz, now()), ${key}, ${timeout}::double precision, ${cacheKey}, ${expires}::double precision,
          ${cached}::boolean, ${result}::jsonb, ${resultRef}, CASE WHEN ${cached}::boolean THEN now() END, ${namespace},
          ${traceContext}::jsonb, ${priority}::smallint, ${concurrencyKey}, ${rateLimitKey})`;
      });
      const got = await q.query<RunRow & { due: boolean; held: boolean }>(
        `INSERT INTO runs (id, task, state, parameters, created_at, scheduled_at, idempotency_key, timeout_seconds, cache_key,
                           cache_expires_in_seconds, cached, result, result_ref, finished_at, namespace, trace_context,
                           priority, concurrency_key, rate_limit_key)
         VALUES ${rows.join(", ")}
         ON CONFLICT (namespace, idempotency_key) DO NOTHING
         RETURNING *, state = 'SCHEDULED' AND scheduled_at <= now() AS due, state = 'PENDING' AND published_at IS NULL AS held`,
        params,
      );
      for (const r of got) inserted.set(r.id, { ...toStored(r), created: true, due: r.due, held: r.held });
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
  const rows = await db.query<{ id: string; updated_at: Date | string }>(
    `UPDATE runs SET state = 'PENDING', published_at = now(), updated_at = now()
     WHERE id = ANY($1::uuid[]) AND state = 'SCHEDULED' RETURNING id, updated_at`,
    [uuidArray(ids)],
  );
  return new Map(rows.map((r) => [r.id, iso(r.updated_at)]));
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
