import type { Db } from "./db.js";
import { placeholders, toStored, type RunRow, type StoredRun } from "./rows.js";

/**
 * Finds the runs due for a dispatch, locks them with SKIP LOCKED so replicas
 * share the work, hands them to `publish`, and marks them `PENDING` once it
 * resolves; all in one transaction, so a failed publish leaves them as they
 * were. Due runs are:
 * - `SCHEDULED` ones whose time came (scheduled for later), or recorded but
 *   never published (the API died in between) for `republishAfterSeconds`;
 * - `AWAITING_RETRY` ones whose `retry_at` came: they get their next dispatch
 *   (a new message id), with `attemptsBefore` = the tries so far.
 * Answers the runs that moved, as they are now.
 */
export async function sweepDue(
  db: Db,
  opts: { republishAfterSeconds: number; limit: number },
  publish: (runs: StoredRun[]) => Promise<void>,
): Promise<StoredRun[]> {
  return db.transaction(async (tx) => {
    // Two statements: PostgreSQL allows no FOR UPDATE in a UNION.
    const scheduled = await tx.query<RunRow>(
      `SELECT * FROM runs
       WHERE state = 'SCHEDULED' AND scheduled_at <= now()
         AND (scheduled_at > created_at OR created_at <= now() - make_interval(secs => $1::double precision))
       ORDER BY scheduled_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [opts.republishAfterSeconds, opts.limit],
    );
    const retries = await tx.query<RunRow>(
      `SELECT * FROM runs WHERE state = 'AWAITING_RETRY' AND retry_at <= now()
       ORDER BY retry_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [opts.limit],
    );
    const rows = [...scheduled, ...retries];
    if (rows.length === 0) return [];
    const next = rows.map((r) => (r.state === "AWAITING_RETRY" ? { ...r, dispatch: r.dispatch + 1 } : r));
    await publish(next.map(toStored));
    const ids = next.map((r) => r.id);
    const moved = await tx.query<RunRow>(
      `UPDATE runs SET state = 'PENDING', published_at = now(), updated_at = now(), retry_at = NULL,
         dispatch = CASE WHEN state = 'AWAITING_RETRY' THEN dispatch + 1 ELSE dispatch END
       WHERE id IN (${placeholders(1, ids.length)}) AND state IN ('SCHEDULED', 'AWAITING_RETRY') RETURNING *`,
      ids,
    );
    return moved.map(toStored);
  });
}
