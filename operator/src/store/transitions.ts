import type { Run, RunError } from "@offload/sdk/internal";
import type { Db, Queryable } from "./db.js";
import { toStored, type RunRow, type StoredRun } from "./rows.js";

/**
 * Cancels a run no worker has started (`SCHEDULED`, `PENDING`,
 * `AWAITING_RETRY`): `CANCELLED` at once. Answers the cancelled run, or
 * undefined when it was in another state (running, finished, or unknown).
 */
export async function cancelWaitingRun(db: Queryable, id: string): Promise<Run | undefined> {
  const rows = await db.query<RunRow>(
    `UPDATE runs SET state = 'CANCELLED', finished_at = now(), retry_at = NULL, updated_at = now()
     WHERE id = $1::uuid AND state IN ('SCHEDULED', 'PENDING', 'AWAITING_RETRY') RETURNING *`,
    [id],
  );
  return rows[0] ? toStored(rows[0]).run : undefined;
}

/**
 * Gives a `FAILED` run another dispatch, by hand: the one exception to
 * "a terminal state is never left", made only on an operator's request. In
 * one transaction holding the row: `publish` gets the run with its next
 * dispatch number, then the run becomes `PENDING` with its error and finish
 * time cleared; `attempts` counts on. Answers undefined (and publishes
 * nothing) when the run is not `FAILED`; a failed publish rolls back. A run
 * of a task `hold` names (a limited task) is not published: it becomes held
 * (`PENDING`, no `published_at`) for admission to dispatch in its turn.
 */
export async function retryFailedRun(
  db: Db,
  id: string,
  publish: (run: StoredRun) => Promise<void>,
  hold: (task: string) => boolean = () => false,
): Promise<Run | undefined> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<RunRow>("SELECT * FROM runs WHERE id = $1::uuid AND state = 'FAILED' FOR UPDATE", [id]);
    if (!rows[0]) return undefined;
    const held = hold(rows[0].task);
    if (!held) await publish(toStored({ ...rows[0], dispatch: rows[0].dispatch + 1 }));
    const moved = await tx.query<RunRow>(
      `UPDATE runs SET state = 'PENDING', dispatch = dispatch + 1, error = NULL, finished_at = NULL, retry_at = NULL,
         published_at = CASE WHEN $2::boolean THEN NULL ELSE now() END, waiting_for = NULL, updated_at = now()
       WHERE id = $1::uuid RETURNING *`,
      [id, held],
    );
    return toStored(moved[0]!).run;
  });
}

/**
 * Marks a run `FAILED` because its task message ran out of deliveries, if
 * that message is still the run's current dispatch and the run has not moved
 * on (it may have been retried, or finished, meanwhile). Idempotent: every
 * replica hears the advisory, and only the first changes anything.
 */
export async function failUndelivered(db: Queryable, id: string, dispatch: number, error: RunError): Promise<Run | undefined> {
  const rows = await db.query<RunRow>(
    `UPDATE runs SET state = 'FAILED', error = $3::jsonb, finished_at = now(), retry_at = NULL, updated_at = now()
     WHERE id = $1::uuid AND dispatch = $2 AND state IN ('SCHEDULED', 'PENDING', 'RUNNING') RETURNING *`,
    [id, dispatch, JSON.stringify(error)],
  );
  return rows[0] ? toStored(rows[0]).run : undefined;
}
