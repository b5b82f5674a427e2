import type { Json } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
import { CHUNK, placeholders } from "./rows.js";

/** What a cache hit lends a new run: the earlier run's outcome. */
export interface CacheHit {
  /** The run that computed the result. */
  sourceId: string;
  result: Json | null;
  resultRef: string | null;
}

/** The key a hit is found under: cache keys are scoped to their task, so two tasks never share results by accident. */
export const cacheSlot = (task: string, cacheKey: string): string => JSON.stringify([task, cacheKey]);

/**
 * The newest unexpired `COMPLETED` run for each `(task, cacheKey)`, keyed by
 * {@link cacheSlot}. Only runs that computed their result count: a run that
 * was itself a cache hit would otherwise restart the expiry clock, and a
 * result could then outlive its `cacheExpiresInSeconds` forever.
 */
export async function findCacheHits(q: Queryable, wanted: readonly { task: string; cacheKey: string }[]): Promise<Map<string, CacheHit>> {
  const hits = new Map<string, CacheHit>();
  const unique = [...new Map(wanted.map((w) => [cacheSlot(w.task, w.cacheKey), w])).values()];
  for (let start = 0; start < unique.length; start += CHUNK) {
    const chunk = unique.slice(start, start + CHUNK);
    const params = chunk.flatMap((w) => [w.task, w.cacheKey]);
    const pairs = chunk.map((_, i) => `(${placeholders(2 * i + 1, 2)})`).join(", ");
    const rows = await q.query<{ id: string; task: string; cache_key: string; result: Json | null; result_ref: string | null }>(
      `SELECT DISTINCT ON (task, cache_key) id, task, cache_key, result, result_ref FROM runs
       WHERE (task, cache_key) IN (${pairs})
         AND state = 'COMPLETED' AND NOT cached
         AND (cache_expires_in_seconds IS NULL OR finished_at + make_interval(secs => cache_expires_in_seconds) > now())
       ORDER BY task, cache_key, finished_at DESC`,
      params,
    );
    for (const r of rows) hits.set(cacheSlot(r.task, r.cache_key), { sourceId: r.id, result: r.result ?? null, resultRef: r.result_ref });
  }
  return hits;
}
