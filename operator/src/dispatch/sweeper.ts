import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import type { Run } from "@offload/sdk/internal";
import { sweepOutbox } from "../store/outbox.js";
import { sweepDue } from "../store/sweep.js";
import { startPeriodic, type Periodic } from "./periodic.js";
import { publishRuns, type DispatchBus } from "./publisher.js";

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
  /** The tasks whose runs wait for admission rather than go straight to NATS. @defaultValue none */
  limited?(): ReadonlySet<string>;
  /** Called with the runs of limited tasks it moved to wait for admission (a due scheduled run, a retry). */
  onHeld?(runs: Run[]): void;
}

/**
 * Makes sure no run waits forever for its task message: every `intervalMs` it
 * publishes runs that became due (scheduled for later), runs recorded but
 * never published (the API stopped or NATS was away in between: rows left in
 * the dispatch outbox, or `SCHEDULED` runs of a retry), and retries whose time
 * came (the delay between tries is kept here, not by a sleeping worker), and
 * marks them `PENDING`.
 * Replicas share the work through `FOR UPDATE SKIP LOCKED`; a run published
 * twice is dropped by JetStream's message-id dedup. Resolves `stop()` once the
 * sweep in progress has finished.
 */
export function startSweeper(db: Db, bus: DispatchBus, opts: SweeperOptions, log: Logger): Periodic {
  const batch = opts.batch ?? 500;

  const sweepOnce = async (): Promise<number> => {
    const limited = opts.limited?.();
    const moved = await sweepDue(db, { republishAfterSeconds: opts.republishAfterSeconds, limit: batch, limited }, async (runs) => {
      const { failed } = await publishRuns(bus, runs);
      // Roll back rather than mark half a batch PENDING; the published ones are deduplicated next time.
      if (failed.length) throw new AggregateError(failed, `could not publish ${failed.length} of ${runs.length} due runs`);
    });
    for (const r of moved.dispatched) opts.onDispatched?.(r.run);
    if (moved.held.length) opts.onHeld?.(moved.held.map((r) => r.run));
    const republished = await sweepOutbox(db, { republishAfterSeconds: opts.republishAfterSeconds, limit: batch }, async (runs) => {
      const { failed } = await publishRuns(bus, runs);
      if (failed.length) throw new AggregateError(failed, `could not publish ${failed.length} of ${runs.length} runs left in the dispatch outbox`);
    });
    return Math.max(moved.dispatched.length + moved.held.length, republished.length);
  };

  return startPeriodic(opts.intervalMs, async (stopping) => {
    // Nothing could be published: opening a transaction to roll it back would only hold rows.
    if (!bus.link.connected) return;
    try {
      let n: number;
      do {
        n = await sweepOnce();
        if (n) log.info({ runs: n }, "sweeper published due runs");
      } while (n >= batch && !stopping());
    } catch (err) {
      log.warn({ err }, "sweep failed; trying again shortly");
    }
  });
}
