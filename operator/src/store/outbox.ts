import type { Db, Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { toStored, type RunRow, type StoredRun } from "./rows.js";

/**
 * Takes published runs out of the dispatch outbox: JetStream has their task
 * messages, so the sweeper must not publish them again. Rows a sweeper holds
 * (it is republishing them, and removes them itself) are skipped rather than
 * waited for. `ids` must be UUIDs.
 */
export async function confirmDispatched(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `DELETE FROM dispatch_outbox WHERE run_id IN (
       SELECT run_id FROM dispatch_outbox WHERE run_id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED)`,
    [uuidArray(ids)],
    { name: "offload.confirm-dispatched.v1" },
  );
}

/**
 * Publishes again the runs whose task message was never confirmed (the run API
 * stopped or NATS was away between recording and publishing) once their
 * outbox row is `republishAfterSeconds` old: locks up to `limit` rows with
 * SKIP LOCKED, so replicas share the work, removes them and hands their runs
 * still `PENDING` to `publish`, in one transaction, so a publish that fails
 * (`publish` rejects) leaves them for the next sweep. A run that started,
 * finished or was cancelled meanwhile only loses its row. JetStream drops a
 * second publish of the same dispatch by its message id. Answers the runs handed to `publish`.
 */
export async function sweepOutbox(
  db: Db,
  opts: { republishAfterSeconds: number; limit: number },
  publish: (runs: StoredRun[]) => Promise<void>,
): Promise<StoredRun[]> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<RunRow>(
      `WITH stale AS (
         SELECT run_id FROM dispatch_outbox WHERE recorded_at <= now() - make_interval(secs => $1::double precision)
         ORDER BY recorded_at LIMIT $2 FOR UPDATE SKIP LOCKED
       ), taken AS (
         DELETE FROM dispatch_outbox o USING stale WHERE o.run_id = stale.run_id RETURNING o.run_id
       )
       SELECT runs.* FROM runs JOIN taken ON runs.id = taken.run_id WHERE runs.state = 'PENDING' AND runs.published_at IS NOT NULL`,
      [opts.republishAfterSeconds, opts.limit],
    );
    const runs = rows.map(toStored);
    if (runs.length) await publish(runs);
    return runs;
  });
}
