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
 * Runs of a task in `limited` are not published: they become held (`PENDING`
 * with no `published_at`) for admission, which dispatches them when the
 * task's limits allow; so a retry or a scheduled run of a limited task waits
 * its turn like a new one.
 * Answers the runs that moved, as they are now: `dispatched` (published) and `held`.
 */
export async function sweepDue(
  db: Db,
  opts: { republishAfterSeconds: number; limit: number; limited?: ReadonlySet<string> },
  publish: (runs: StoredRun[]) => Promise<void>,
): Promise<{ dispatched: StoredRun[]; held: StoredRun[] }> {
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
       UPDATE runs SET state = 'PENDING', updated_at = now(), retry_at = NULL, waiting_for = NULL,
         published_at = CASE WHEN task IN (SELECT jsonb_array_elements_text($3::jsonb)) THEN NULL ELSE now() END,
         dispatch = CASE WHEN state = 'AWAITING_RETRY' THEN dispatch + 1 ELSE dispatch END
       WHERE id IN (SELECT id FROM scheduled UNION ALL SELECT id FROM retries) RETURNING *`,
      [opts.republishAfterSeconds, opts.limit, JSON.stringify([...(opts.limited ?? [])])],
    );
    const limited = opts.limited ?? new Set<string>();
    const runs = moved.map(toStored);
    const dispatched = runs.filter((r) => !limited.has(r.run.task));
    const held = runs.filter((r) => limited.has(r.run.task));
    if (dispatched.length) await publish(dispatched);
    return { dispatched, held };
  });
}
