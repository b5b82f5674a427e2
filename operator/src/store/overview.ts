/**
 * The dashboard's read-only summaries of the runs table. Both queries stay on
 * indexes: unfinished runs by state (runs_state_created), finished ones by
 * state and finish time (runs_finished), so their cost follows the runs in
 * the window, not the table.
 */
import type { RunState } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";

/** How many runs of one task are in each state: unfinished ones all, finished ones within the window. */
export type StateCounts = Record<RunState, number>;

const zeroCounts = (): StateCounts => ({ SCHEDULED: 0, PENDING: 0, RUNNING: 0, AWAITING_RETRY: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 });

/** Per task: the runs not finished, and those that finished since `since`. Of one namespace when given. */
export async function countsByTask(db: Queryable, q: { since: Date; namespace?: string | undefined }): Promise<Map<string, StateCounts>> {
  const params: unknown[] = [q.since.toISOString()];
  const ns = q.namespace === undefined ? "" : ` AND namespace = $${params.push(q.namespace)}`;
  const rows = await db.query<{ task: string; state: RunState; n: number | string }>(
    `SELECT task, state, count(*) AS n FROM runs
     WHERE state IN ('SCHEDULED', 'PENDING', 'RUNNING', 'AWAITING_RETRY')${ns}
     GROUP BY task, state
     UNION ALL
     SELECT task, state, count(*) AS n FROM runs
     WHERE state IN ('COMPLETED', 'FAILED', 'CANCELLED') AND finished_at >= $1::timestamptz${ns}
     GROUP BY task, state`,
    params,
  );
  const out = new Map<string, StateCounts>();
  for (const r of rows) {
    const counts = out.get(r.task) ?? zeroCounts();
    // count(*) is a bigint: pg answers it as a string.
    counts[r.state] += Number(r.n);
    out.set(r.task, counts);
  }
  return out;
}

/** Runs that finished in one slice of time. */
export interface ThroughputBucket {
  /** The slice's start (ISO 8601). */
  at: string;
  completed: number;
  failed: number;
}

/**
 * Runs that completed and failed per `bucketSeconds` from `since` to `until`,
 * oldest first, every slice present (zero when nothing finished in it).
 * Slices are aligned to the epoch, so two calls a moment apart agree.
 */
export async function throughput(
  db: Queryable,
  q: { since: Date; until: Date; bucketSeconds: number; namespace?: string | undefined },
): Promise<ThroughputBucket[]> {
  const params: unknown[] = [q.since.toISOString(), q.bucketSeconds];
  const ns = q.namespace === undefined ? "" : ` AND namespace = $${params.push(q.namespace)}`;
  const rows = await db.query<{ b: number | string; state: "COMPLETED" | "FAILED"; n: number | string }>(
    `SELECT floor(extract(epoch FROM finished_at) / $2::double precision) AS b, state, count(*) AS n FROM runs
     WHERE state IN ('COMPLETED', 'FAILED') AND finished_at >= $1::timestamptz${ns}
     GROUP BY 1, 2`,
    params,
  );
  const size = q.bucketSeconds * 1000;
  const first = Math.floor(q.since.getTime() / size);
  // A run that finished while the query ran is in the last slice, not lost.
  const last = Math.max(Math.floor(q.until.getTime() / size), ...rows.map((r) => Number(r.b)));
  const buckets: ThroughputBucket[] = [];
  for (let b = first; b <= last; b++) buckets.push({ at: new Date(b * size).toISOString(), completed: 0, failed: 0 });
  for (const r of rows) {
    const slot = buckets[Number(r.b) - first];
    if (!slot) continue; // rounding at the window's start
    if (r.state === "COMPLETED") slot.completed += Number(r.n);
    else slot.failed += Number(r.n);
  }
  return buckets;
}
