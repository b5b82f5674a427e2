import type { Run, RunError } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
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
 * "a terminal state is never left", made only on an operator's request. One
 * statement: the run becomes `SCHEDULED` with its next dispatch number, its
 * error and finish time cleared; `attempts` counts on. The caller
 * then publishes it and marks it `PENDING`, as for a new run (and if that
 * fails, the sweeper publishes it). The change is committed before anything
 * is published on purpose: a worker's outcome for the new dispatch can reach
 * the run API within milliseconds (a quick run sends only its outcome), and an
 * event read against the still-committed `FAILED` row would be dropped as a
 * straggler, leaving the run waiting for ever. A run of a task `hold` names
 * (a limited task) becomes held (`PENDING`, no `published_at`) for admission
 * to dispatch in its turn. Answers the run as it is now, or undefined when it
 * was not `FAILED`.
 */
export async function retryFailedRun(db: Queryable, id: string, hold: (task: string) => boolean = () => false): Promise<StoredRun | undefined> {
  const [failed] = await db.query<{ task: string }>("SELECT task FROM runs WHERE id = $1::uuid AND state = 'FAILED'", [id]);
  if (!failed) return undefined;
  const moved = await db.query<RunRow>(
    `UPDATE runs SET state = CASE WHEN $2::boolean THEN 'PENDING' ELSE 'SCHEDULED' END, dispatch = dispatch + 1, error = NULL,
       finished_at = NULL, retry_at = NULL, published_at = NULL, waiting_for = NULL, updated_at = now()
     WHERE id = $1::uuid AND state = 'FAILED' RETURNING *`,
    [id, hold(failed.task)],
  );
  return moved[0] ? toStored(moved[0]) : undefined;
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
