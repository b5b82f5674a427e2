import type { Json } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
import { CHUNK, DEFAULT_NAMESPACE } from "./rows.js";

/** What a cache hit lends a new run: the earlier run's outcome. */
export interface CacheHit {
  /** The run that computed the result. */
  sourceId: string;
  result: Json | null;
  resultRef: string | null;
}

/**
 * The key a hit is found under: cache keys are scoped to their task, so two tasks never share results by accident,
 * and to their namespace, so a caller never gets a result computed for another namespace's callers.
 */
export const cacheSlot = (namespace: string, task: string, cacheKey: string): string => JSON.stringify([namespace, task, cacheKey]);

/**
 * The newest unexpired `COMPLETED` run for each `(namespace, task, cacheKey)`, keyed by
 * {@link cacheSlot}. Only runs that computed their result count: a run that
 * was itself a cache hit would otherwise restart the expiry clock, and a
 * result could then outlive its `cacheExpiresInSeconds` forever. Runs that
 * finished more than `retentionSeconds` ago (0: no limit) do not count either:
 * retention is about to delete them and their stored result.
 *
 * Each hit's row is locked `FOR KEY SHARE` until the caller's transaction
 * ends, so retention (which skips locked rows) cannot delete it, nor decide
 * its stored result is unreferenced, while the run borrowing it is not yet
 * committed. Call it inside the transaction that records those runs.
 */
export async function findCacheHits(
  q: Queryable,
  wanted: readonly { namespace?: string; task: string; cacheKey: string }[],
  opts: { retentionSeconds: number },
): Promise<Map<string, CacheHit>> {
  const hits = new Map<string, CacheHit>();
  // A run without a namespace is in `default`, as the column's default says.
  const scoped = wanted.map((w) => ({ ...w, namespace: w.namespace ?? DEFAULT_NAMESPACE }));
  const unique = [...new Map(scoped.map((w) => [cacheSlot(w.namespace, w.task, w.cacheKey), w])).values()];
  const retention = opts.retentionSeconds > 0 ? opts.retentionSeconds : null;
  for (let start = 0; start < unique.length; start += CHUNK) {
    const chunk = unique.slice(start, start + CHUNK);
    const params: unknown[] = [retention, ...chunk.flatMap((w) => [w.namespace, w.task, w.cacheKey])];
    const triples = chunk.map((_, i) => `($${3 * i + 2}::text, $${3 * i + 3}::text, $${3 * i + 4}::text)`).join(", ");
    // A lateral subquery per slot rather than DISTINCT ON, which allows no locking clause.
    const rows = await q.query<{ id: string; namespace: string; task: string; cache_key: string; result: Json | null; result_ref: string | null }>(
      `SELECT h.id, w.namespace, w.task, w.cache_key, h.result, h.result_ref FROM (VALUES ${triples}) AS w(namespace, task, cache_key)
       CROSS JOIN LATERAL (
         SELECT id, result, result_ref FROM runs r
         WHERE r.task = w.task AND r.cache_key = w.cache_key AND r.namespace = w.namespace
           AND r.state = 'COMPLETED' AND NOT r.cached
           AND (r.cache_expires_in_seconds IS NULL OR r.finished_at + make_interval(secs => r.cache_expires_in_seconds) > now())
           AND ($1::double precision IS NULL OR r.finished_at > now() - make_interval(secs => $1::double precision))
         ORDER BY r.finished_at DESC LIMIT 1
         FOR KEY SHARE
       ) h`,
      params,
    );
    for (const r of rows) hits.set(cacheSlot(r.namespace, r.task, r.cache_key), { sourceId: r.id, result: r.result ?? null, resultRef: r.result_ref });
  }
  return hits;
}
