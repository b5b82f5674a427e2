import type { Db } from "./db.js";
import { toStored, type RunRow, type StoredRun } from "./rows.js";

/**
 * Finds the runs due for a dispatch, locks them with SKIP LOCKED so replicas
 * share the work, marks them `PENDING` and hands them to `publish`; all in one
 * transaction, so a failed publish (`publish` rejects) rolls back and leaves
 * them due as they were. Due runs are:
 * - `SCHEDULED` ones whose time came (scheduled for later), or recorded but
 *   never published (the API died in between) for `republishAfterSeconds`;
 * - `AWAITING_RETRY` ones whose `retry_at` came: they get their next dispatch
 *   (a new message id), with `attemptsBefore` = the tries so far.
 * Answers the runs that moved, as they are now (as published).
 */
export async function sweepDue(
  db: Db,
  opts: { republishAfterSeconds: number; limit: number },
  publish: (runs: StoredRun[]) => Promise<void>,
): Promise<StoredRun[]> {
  return db.transaction(async (tx) => {
    // Two locking sub-selects: PostgreSQL allows no FOR UPDATE in a UNION. SET reads the row as it was,
    // so `state` in the CASE is the state before this update.
    const moved = await tx.query<RunRow>(
      `WITH scheduled AS (
         SELECT id FROM runs
         WHERE state = 'SCHEDULED' AND scheduled_at <= now()
           AND (scheduled_at > created_at OR created_at <= now() - make_interval(secs => $1::double precision))
         ORDER BY scheduled_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), retries AS (
         SELECT id FROM runs WHERE state = 'AWAITING_RETRY' AND retry_at <= now()
         ORDER BY retry_at LIMIT $2 FOR UPDATE SKIP LOCKED
       )
       UPDATE runs SET state = 'PENDING', published_at = now(), updated_at = now(), retry_at = NULL,
         dispatch = CASE WHEN state = 'AWAITING_RETRY' THEN dispatch + 1 ELSE dispatch END
       WHERE id IN (SELECT id FROM scheduled UNION ALL SELECT id FROM retries) RETURNING *`,
      [opts.republishAfterSeconds, opts.limit],
    );
    if (moved.length === 0) return [];
    const runs = moved.map(toStored);
    await publish(runs);
    return runs;
  });
}
