import type { RunState } from "@offload/sdk/internal";
import type { Db } from "./db.js";
import { stateList } from "./rows.js";

/** The states retention deletes runs in: the finished ones, which nothing moves out of on its own. */
export const FINISHED_STATES = ["COMPLETED", "FAILED", "CANCELLED"] as const satisfies readonly RunState[];
export type FinishedState = (typeof FINISHED_STATES)[number];

// Any fixed number, distinct from the migration lock: the class of the per-key locks below.
const RESULT_KEY_LOCK_CLASS = 421_075;

/** What one {@link deleteExpiredRuns} call deleted. */
export interface ExpiredBatch {
  /** Ids of the runs deleted. */
  runs: string[];
  /** Keys of the results store no remaining run points at, handed to `removeResults` before the deletion committed. */
  resultKeys: string[];
}

/**
 * Deletes up to `limit` runs in `state` that finished more than
 * `olderThanSeconds` ago (by `finished_at`), in one transaction:
 * - the runs are locked with SKIP LOCKED, so replicas share the work, and a
 *   run a cache hit is borrowing from this moment (see `findCacheHits`, which
 *   locks it) is left for the next pass;
 * - the results store keys they held are collected: each run's `result_ref`,
 *   and for a run that computed its result its own id too (the key a worker
 *   stores under; a worker may have stored a result the run never recorded,
 *   e.g. when it was cancelled meanwhile);
 * - keys a remaining run still points at (a cached run borrowing a deleted
 *   run's result) are kept; they go with the last run that points at them.
 *   The keys are locked (advisory, per key) first, so two replicas deleting
 *   the last two runs of one key cannot each see the other's as remaining;
 * - the rest are handed to `removeResults`, and the deletion commits once it
 *   resolves. If it rejects, no run is deleted; the keys it removed by then
 *   belonged to runs past retention, which the next pass deletes.
 */
export async function deleteExpiredRuns(
  db: Db,
  opts: { state: FinishedState; olderThanSeconds: number; limit: number },
  removeResults: (keys: string[]) => Promise<void>,
): Promise<ExpiredBatch> {
  return db.transaction(async (tx) => {
    const deleted = await tx.query<{ id: string; result_ref: string | null; cached: boolean }>(
      `DELETE FROM runs WHERE id IN (
         SELECT id FROM runs
         WHERE state = ${stateList([opts.state])} AND finished_at < now() - make_interval(secs => $1::double precision)
         LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING id, result_ref, cached`,
      [opts.olderThanSeconds, opts.limit],
    );
    if (deleted.length === 0) return { runs: [], resultKeys: [] };
    const held = new Set<string>();
    for (const r of deleted) {
      if (r.result_ref !== null) held.add(r.result_ref);
      if (!r.cached) held.add(r.id);
    }
    const keys = [...held].sort();
    await tx.query(
      `SELECT pg_advisory_xact_lock(${RESULT_KEY_LOCK_CLASS}, h) FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY 1) s`,
      [keys],
    );
    const referenced = await tx.query<{ result_ref: string }>("SELECT DISTINCT result_ref FROM runs WHERE result_ref = ANY($1::text[])", [keys]);
    const kept = new Set(referenced.map((r) => r.result_ref));
    const resultKeys = keys.filter((k) => !kept.has(k));
    if (resultKeys.length) await removeResults(resultKeys);
    return { runs: deleted.map((r) => r.id), resultKeys };
  });
}
