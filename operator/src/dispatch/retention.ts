import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import { deleteExpiredRuns, FINISHED_STATES, type FinishedState } from "../store/retention.js";
import { startPeriodic, type Periodic } from "./periodic.js";
import { deleteStoredResult } from "./results.js";

/** Options of {@link startRetention}. */
export interface RetentionOptions {
  /** Seconds after `finished_at` that COMPLETED and CANCELLED runs are deleted; 0 keeps them. */
  runRetentionSeconds: number;
  /** The same for FAILED runs. */
  failedRunRetentionSeconds: number;
  /** Pause between passes, in ms. */
  intervalMs: number;
  /** Most runs per statement (one transaction). @defaultValue 1000 */
  batch?: number;
  /** Hears how many runs of a state a batch deleted (feeds the metrics). */
  onDeleted?(state: FinishedState, count: number): void;
}

/**
 * Bounds the run store: every `intervalMs` it deletes finished runs past
 * their retention, batch by batch until none is left, and their results from
 * the results store unless a remaining (cached) run still points at them (see
 * `deleteExpiredRuns`). Replicas share the work through `FOR UPDATE SKIP
 * LOCKED`. Starts nothing when both retentions are 0 (keep forever).
 */
export function startRetention(
  db: Db,
  stores: { results: ObjectStore; jsm: JetStreamManager },
  opts: RetentionOptions,
  log: Logger,
): Periodic {
  const batch = opts.batch ?? 1000;
  const ages = new Map<FinishedState, number>(
    FINISHED_STATES.map((s) => [s, s === "FAILED" ? opts.failedRunRetentionSeconds : opts.runRetentionSeconds]),
  );
  const states = FINISHED_STATES.filter((s) => ages.get(s)! > 0);
  if (states.length === 0) return { stop: async () => undefined };

  let removed = 0;
  const removeResults = async (keys: string[]): Promise<void> => {
    const settled = await Promise.allSettled(keys.map((k) => deleteStoredResult(stores.results, stores.jsm, k)));
    removed += settled.filter((s) => s.status === "fulfilled" && s.value).length;
    const failed = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
    // Keep the runs (the transaction rolls back) rather than lose track of results: the next pass tries again.
    if (failed.length) throw new AggregateError(failed, `could not delete ${failed.length} of ${keys.length} stored results`);
  };

  return startPeriodic(opts.intervalMs, async (stopping) => {
    const runs: Partial<Record<FinishedState, number>> = {};
    removed = 0;
    try {
      for (const state of states) {
        let n: number;
        do {
          const got = await deleteExpiredRuns(db, { state, olderThanSeconds: ages.get(state)!, limit: batch }, removeResults);
          n = got.runs.length;
          if (n) {
            runs[state] = (runs[state] ?? 0) + n;
            opts.onDeleted?.(state, n);
          }
        } while (n >= batch && !stopping());
      }
    } catch (err) {
      log.warn({ err }, "deleting expired runs failed; trying again next pass");
    }
    if (Object.keys(runs).length) log.info({ runs, results: removed }, "deleted finished runs past retention");
  });
}
