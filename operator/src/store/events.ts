import { statesBefore, type Run, type RunEvent } from "@offload/sdk/internal";
import type { Queryable } from "./db.js";
import { json, stateList, toStored, type RunRow } from "./rows.js";

/**
 * Applies a worker's event to its run, if the transition is allowed: a
 * terminal run never changes, and a late or duplicated event (an older
 * attempt's) never moves a run backwards. Answers the updated run, or
 * undefined when the event changed nothing.
 */
export async function applyEvent(db: Queryable, e: RunEvent): Promise<Run | undefined> {
  const set = ["state = $2", "attempts = GREATEST(attempts, $3::integer)", "updated_at = now()"];
  const params: unknown[] = [e.runId, e.type, e.attempt];
  const p = (v: unknown): string => `$${params.push(v)}`;
  // A run waiting for a dispatch counts its earlier tries in `attempts`; that dispatch's tries are numbered
  // above it. So an event numbered at or below is an older dispatch's straggler (e.g. after a manual retry).
  let guard = `state IN (${stateList(statesBefore(e.type))}) AND (state NOT IN ('SCHEDULED', 'PENDING') OR attempts < $3::integer)`;
  switch (e.type) {
    case "RUNNING":
      set.push(`started_at = ${p(e.at)}::timestamptz`, `worker_id = ${p(e.workerId)}`, "retry_at = NULL");
      // A RUNNING of the same (or an older) attempt is a duplicate; only a new attempt restarts a run.
      guard += ` AND (state IN ('SCHEDULED', 'PENDING') OR attempts < $3::integer)`;
      break;
    case "AWAITING_RETRY":
      set.push(`error = ${p(e.error ? JSON.stringify(e.error) : null)}::jsonb`, `worker_id = ${p(e.workerId)}`);
      // With a time, the dispatcher sends the next try then (and `scheduledAt` says when);
      // without one, the worker retries on its own and the sweeper leaves the run alone.
      if (e.retryAt) set.push(`retry_at = ${p(e.retryAt)}::timestamptz`, `scheduled_at = ${p(e.retryAt)}::timestamptz`);
      else set.push("retry_at = NULL");
      guard += " AND attempts <= $3::integer";
      break;
    case "COMPLETED":
      set.push(
        `result = ${p(json(e.result))}::jsonb`,
        `result_ref = ${p(e.resultRef ?? null)}`,
        "error = NULL",
        "retry_at = NULL",
        `finished_at = ${p(e.at)}::timestamptz`,
        `worker_id = ${p(e.workerId)}`,
      );
      if (e.cached !== undefined) set.push(`cached = ${p(e.cached)}`);
      if (e.cacheKey !== undefined) set.push(`cache_key = ${p(e.cacheKey)}`);
      break;
    case "FAILED":
      set.push(
        `error = ${p(JSON.stringify(e.error ?? { type: "Error", message: "the run failed (the worker gave no error)" }))}::jsonb`,
        "retry_at = NULL",
        `finished_at = ${p(e.at)}::timestamptz`,
        `worker_id = ${p(e.workerId)}`,
      );
      break;
    case "CANCELLED":
      set.push(`finished_at = ${p(e.at)}::timestamptz`, "retry_at = NULL");
      break;
  }
  const rows = await db.query<RunRow>(`UPDATE runs SET ${set.join(", ")} WHERE id = $1::uuid AND ${guard} RETURNING *`, params);
  return rows[0] ? toStored(rows[0]).run : undefined;
}
