import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import { confirmDispatched } from "../store/outbox.js";
import type { StoredRun } from "../store/runs.js";
import { NatsDisconnectedError } from "./connection.js";
import { publishRuns, type DispatchBus } from "./publisher.js";

/**
 * How long confirmations gather before their DELETE. At a few hundred single
 * `delay()`s a second, a DELETE per confirmation was one of the three
 * statements each run cost PostgreSQL; waiting this long lets a few dozen
 * share one. A row kept a little longer costs nothing: only the sweeper reads
 * the outbox, and only rows seconds old (`OFFLOAD_REPUBLISH_AFTER_SECONDS`).
 */
export const CONFIRM_GATHER_MS = 20;

/** Options of an {@link OutboxDispatcher}. */
export interface OutboxDispatcherOptions {
  /**
   * Past this many runs published and not yet confirmed by JetStream, {@link OutboxDispatcher.dispatch} waits for
   * its own runs' confirmations: a burst of submissions cannot pile up task messages in memory faster than NATS
   * takes them. @defaultValue 2000
   */
  maxUnconfirmed?: number;
}

/**
 * Publishes the runs that were recorded with a row in the dispatch outbox
 * (new runs due now), after their caller has been answered, and removes their
 * rows once JetStream confirmed them. Nothing is lost when this process stops
 * or NATS is away midway: a row left behind is the sweeper's to publish again
 * (`OFFLOAD_REPUBLISH_AFTER_SECONDS`), and JetStream drops the duplicate of a
 * message it already had by its id. Confirmations of many groups share one
 * DELETE: they gather for {@link CONFIRM_GATHER_MS}, and while one DELETE is
 * being written, the next ones gather.
 */
export class OutboxDispatcher {
  readonly #db: Db;
  readonly #bus: DispatchBus;
  readonly #log: Logger;
  readonly #maxUnconfirmed: number;
  readonly #inFlight = new Set<Promise<void>>();
  #unconfirmed = 0;
  #confirmed: string[] = [];
  #deleting: Promise<void> | undefined;

  constructor(db: Db, bus: DispatchBus, log: Logger, options: OutboxDispatcherOptions = {}) {
    this.#db = db;
    this.#bus = bus;
    this.#log = log;
    this.#maxUnconfirmed = options.maxUnconfirmed ?? 2_000;
  }

  /**
   * Starts publishing `runs` (recorded with outbox rows) and resolves at once, or, while too many runs await
   * JetStream's confirmation, once these have theirs. Never rejects: a run that could not be published stays in
   * the outbox for the sweeper.
   */
  async dispatch(runs: readonly StoredRun[]): Promise<void> {
    if (runs.length === 0) return;
    const backlogged = this.#unconfirmed >= this.#maxUnconfirmed;
    this.#unconfirmed += runs.length;
    const work = this.#publish(runs).finally(() => {
      this.#unconfirmed -= runs.length;
      this.#inFlight.delete(work);
    });
    this.#inFlight.add(work);
    if (backlogged) await work;
  }

  /** Resolves once every publish started and every confirmation gathered so far is written. */
  async stop(): Promise<void> {
    while (this.#inFlight.size) await Promise.all(this.#inFlight);
    while (this.#deleting) await this.#deleting;
  }

  async #publish(runs: readonly StoredRun[]): Promise<void> {
    const { published, failed } = await publishRuns(this.#bus, runs);
    if (failed.length) {
      // While NATS is away every submission ends here: say why in one line, without a stack each time.
      const first = failed[0];
      const err = first instanceof NatsDisconnectedError ? { reason: first.message } : { err: first };
      this.#log.warn({ ...err, failed: failed.length }, "could not publish runs; the sweeper will retry them");
    }
    if (published.length === 0) return;
    this.#confirmed.push(...published);
    this.#deleting ??= this.#drain();
  }

  async #drain(): Promise<void> {
    // Let the confirmations of the groups published meanwhile join this DELETE.
    await new Promise<void>((resolve) => setTimeout(resolve, CONFIRM_GATHER_MS));
    while (this.#confirmed.length) {
      const ids = this.#confirmed;
      this.#confirmed = [];
      await confirmDispatched(this.#db, ids).catch((err: unknown) => {
        // Harmless beyond a second publish: the sweeper republishes these, and JetStream drops the duplicates.
        this.#log.warn({ err, runs: ids.length }, "could not take published runs out of the dispatch outbox; the sweeper will republish them");
      });
    }
    this.#deleting = undefined;
  }
}
