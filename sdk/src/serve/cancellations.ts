/**
 * This process's view of the cancellations bucket (key: run id). A run is
 * checked once before it starts, and watched while it runs: one KV watch for
 * the whole process fans each cancel out to the runs that asked about that
 * id, so that a run in flight is aborted within moments of its cancel. The
 * watch is opened before any consumer, so that no cancel of a run this
 * process takes goes unseen.
 */
import { KvWatchInclude, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";

/** A run's stake in the cancellations bucket while this process has it. */
export interface CancelWatch {
  /** True once the run's id was seen in the bucket. */
  readonly requested: boolean;
  /** Resolves once the run's id is seen in the bucket. */
  readonly promise: Promise<void>;
  dispose(): void;
}

/** What the watch needs from the server that owns it. */
export interface CancellationsDeps {
  readonly log: Logger;
  /** True once the server is stopping: a watch that ends then is not opened again. */
  stopping(): boolean;
  /** True once the NATS connection is closed for good. */
  connectionClosed(): boolean;
}

export class Cancellations {
  readonly #bucket: KV;
  readonly #deps: CancellationsDeps;
  readonly #waiters = new Map<string, Set<() => void>>();
  #watch: { stop(): void } | undefined;
  #loop: Promise<void> = Promise.resolve();

  private constructor(bucket: KV, deps: CancellationsDeps) {
    this.#bucket = bucket;
    this.#deps = deps;
  }

  /** Opens the watch (so that it is in place when this resolves) and keeps it open until {@link stop}. */
  static async watch(bucket: KV, deps: CancellationsDeps): Promise<Cancellations> {
    const c = new Cancellations(bucket, deps);
    c.#loop = c.#follow(await c.#open());
    return c;
  }

  /** Whether the run's cancel is already in the bucket. */
  async isCancelled(runId: string, log: Logger): Promise<boolean> {
    try {
      const entry = await this.#bucket.get(runId);
      return entry?.operation === "PUT";
    } catch (err) {
      // Not knowing must not stop the run: the watch still catches a cancel arriving later.
      log.warn({ err }, "could not check the cancellations bucket; running the run");
      return false;
    }
  }

  /** Hears of the run's cancel from now on, until disposed. */
  watchRun(runId: string): CancelWatch {
    let requested = false;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const fire = (): void => {
      requested = true;
      resolve();
    };
    let set = this.#waiters.get(runId);
    if (!set) this.#waiters.set(runId, (set = new Set()));
    set.add(fire);
    return {
      get requested() {
        return requested;
      },
      promise,
      dispose: () => {
        set.delete(fire);
        if (set.size === 0 && this.#waiters.get(runId) === set) this.#waiters.delete(runId);
      },
    };
  }

  /** Stops the watch; resolves once its loop has ended. */
  stop(): Promise<void> {
    this.#watch?.stop();
    return this.#loop;
  }

  async #open(): Promise<AsyncIterable<KvWatchEntry> & { stop(): void }> {
    const watch = await this.#bucket.watch({ include: KvWatchInclude.UpdatesOnly });
    this.#watch = watch;
    return watch;
  }

  // Runs for the server's life; a watch that ends (NATS trouble) is opened again.
  async #follow(first: AsyncIterable<KvWatchEntry>): Promise<void> {
    const { log, stopping, connectionClosed } = this.#deps;
    let watch: AsyncIterable<KvWatchEntry> | undefined = first;
    while (!stopping()) {
      try {
        watch ??= await this.#open();
        for await (const e of watch) {
          if (e.operation !== "PUT") continue;
          const waiters = this.#waiters.get(e.key);
          if (waiters) {
            log.info({ runId: e.key }, "cancellation asked for: aborting the run");
            for (const fire of waiters) fire();
          }
        }
      } catch (err) {
        if (!stopping()) log.warn({ err }, "watching the cancellations bucket failed; watching again");
      }
      watch = undefined;
      if (!stopping() && !connectionClosed()) await sleep(1000);
      if (connectionClosed()) return;
    }
  }
}
