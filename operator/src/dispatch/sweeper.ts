import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import type { Run } from "@offload/sdk/internal";
import { sweepDue } from "../store/sweep.js";
import { publishRuns } from "./publisher.js";

/** Options of {@link startSweeper}. */
export interface SweeperOptions {
  /** How old a due, never-published run must be before it is republished. */
  republishAfterSeconds: number;
  /** Pause between sweeps, in ms. */
  intervalMs: number;
  /** Most runs per sweep (one transaction) of each kind (scheduled, retries). @defaultValue 500 */
  batch?: number;
  /** Called with each run it dispatched (feeds event streams). */
  onDispatched?(run: Run): void;
}

/**
 * Makes sure no run stays `SCHEDULED` forever: every `intervalMs` it publishes
 * runs that became due (scheduled for later), runs recorded but never
 * published (the API died between the two), and retries whose time came
 * (the delay between tries is kept here, not by a sleeping worker), then
 * marks them `PENDING`.
 * Replicas share the work through `FOR UPDATE SKIP LOCKED`; a run published
 * twice is dropped by JetStream's message-id dedup. Resolves `stop()` once the
 * sweep in progress has finished.
 */
export function startSweeper(db: Db, js: JetStreamClient, opts: SweeperOptions, log: Logger): { stop(): Promise<void> } {
  const batch = opts.batch ?? 500;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();

  const sweepOnce = async (): Promise<number> => {
    const moved = await sweepDue(db, { republishAfterSeconds: opts.republishAfterSeconds, limit: batch }, async (runs) => {
      const { failed } = await publishRuns(js, runs);
      // Roll back rather than mark half a batch PENDING; the published ones are deduplicated next time.
      if (failed.length) throw new AggregateError(failed, `could not publish ${failed.length} of ${runs.length} due runs`);
    });
    for (const r of moved) opts.onDispatched?.(r.run);
    return moved.length;
  };

  const tick = async (): Promise<void> => {
    try {
      let n: number;
      do {
        n = await sweepOnce();
        if (n) log.info({ runs: n }, "sweeper published due runs");
      } while (n >= batch && !stopped);
    } catch (err) {
      log.warn({ err }, "sweep failed; trying again shortly");
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = tick().finally(schedule);
    }, opts.intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
