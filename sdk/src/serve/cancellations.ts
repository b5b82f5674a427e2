/**
 * This process's view of the cancellations bucket (key: run id). One KV
 * watch for the whole process keeps the set of cancelled run ids (the
 * bucket's values at start, then every cancel as it lands), so that the check
 * before a run starts is a lookup, not a round trip to NATS; and it fans each
 * cancel out to the runs that asked about that id, so that a run in flight is
 * aborted within moments of its cancel. Until the watch has delivered the
 * bucket's values (at start, or after it was opened again), a run's check
 * asks the bucket instead. The watch is opened before any consumer, so that
 * no cancel of a run this process takes goes unseen.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { CANCEL_BUCKET } from "../nats/layout.js";
import { Trigger } from "./trigger.js";

/**
 * Most cancelled ids kept. The bucket keeps a key a week (its max_age); a
 * process that has seen more cancels than this within a week forgets the
 * oldest and asks the bucket about ids it does not know. (About 100 bytes an id.)
 */
export const MAX_KNOWN_CANCELLATIONS = 100_000;
const KEPT_MS = CANCEL_BUCKET.ttl ?? 7 * 24 * 3600 * 1000;

/** A run's stake in the cancellations bucket while this process has it. */
export interface CancelWatch {
  /** True once the run's id was seen in the bucket. */
  readonly requested: boolean;
  /** Calls `fn` once the run's id is seen in the bucket (at once if it was); `undefined` stops listening. */
  listen(fn: (() => void) | undefined): void;
  dispose(): void;
}

/** The watches of one run id, as a list (nearly always of one: a process runs one try of a run at a time). */
class RunWatch extends Trigger implements CancelWatch {
  next: RunWatch | undefined;
  readonly #dispose: (w: RunWatch) => void;

  constructor(dispose: (w: RunWatch) => void) {
    super();
    this.#dispose = dispose;
  }

  get requested(): boolean {
    return this.fired;
  }

  dispose(): void {
    this.listen(undefined);
    this.#dispose(this);
  }
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
  /** The runs in flight here that listen for their cancel, by run id. */
  readonly #waiters = new Map<string, RunWatch>();
  /** Cancelled run ids, with when each cancel was stored, oldest first. */
  readonly #known = new Map<string, number>();
  /** True while the watch has delivered the bucket's values and follows it: an id not known is not cancelled. */
  #caughtUp = false;
  /** True once ids were forgotten to stay within {@link MAX_KNOWN_CANCELLATIONS}: an id not known may be cancelled. */
  #forgot = false;
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

  /** Whether the run's cancel is in the bucket, as far as the watch knows; undefined when only the bucket knows (ask {@link isCancelled}). */
  knownCancelled(runId: string): boolean | undefined {
    if (this.#known.has(runId)) return true;
    if (this.#caughtUp && !this.#forgot) return false;
    return undefined;
  }

  /** Whether the run's cancel is already in the bucket. */
  async isCancelled(runId: string, log: () => Logger): Promise<boolean> {
    const known = this.knownCancelled(runId);
    if (known !== undefined) return known;
    try {
      const entry = await this.#bucket.get(runId);
      return entry?.operation === "PUT";
    } catch (err) {
      // Not knowing must not stop the run: the watch still catches a cancel arriving later.
      log().warn({ err }, "could not check the cancellations bucket; running the run");
      return false;
    }
  }

  /** Hears of the run's cancel from now on, until disposed. */
  watchRun(runId: string): CancelWatch {
    const watch = new RunWatch((w) => this.#unwatch(runId, w));
    watch.next = this.#waiters.get(runId);
    this.#waiters.set(runId, watch);
    return watch;
  }

  #unwatch(runId: string, watch: RunWatch): void {
    let w = this.#waiters.get(runId);
    if (w === watch) {
      if (watch.next) this.#waiters.set(runId, watch.next);
      else this.#waiters.delete(runId);
      return;
    }
    for (; w; w = w.next) {
      if (w.next === watch) {
        w.next = watch.next;
        return;
      }
    }
  }

  /** Stops the watch; resolves once its loop has ended. */
  stop(): Promise<void> {
    this.#watch?.stop();
    return this.#loop;
  }

  async #open(): Promise<AsyncIterable<KvWatchEntry> & { stop(): void }> {
    this.#caughtUp = false;
    // Read first: an empty bucket delivers no value to mark the end of the initial ones. A cancel
    // stored between the two reads still arrives through the watch (and aborts its run if it started).
    const empty = (await this.#bucket.status()).values === 0;
    // The last value of every key, then every change; the values themselves are not needed.
    const watch = await this.#bucket.watch({ headers_only: true });
    this.#watch = watch;
    if (empty) this.#caughtUp = true;
    return watch;
  }

  #remember(e: KvWatchEntry): void {
    if (e.operation !== "PUT") {
      this.#known.delete(e.key);
      return;
    }
    const at = e.created.getTime();
    this.#known.delete(e.key);
    this.#known.set(e.key, at);
    // Oldest first: the bucket has dropped keys older than its max_age, so can the set.
    for (const [key, storedAt] of this.#known) {
      if (this.#known.size <= MAX_KNOWN_CANCELLATIONS && storedAt > Date.now() - KEPT_MS) break;
      if (this.#known.size > MAX_KNOWN_CANCELLATIONS) this.#forgot = true;
      this.#known.delete(key);
    }
  }

  // Runs for the server's life; a watch that ends (NATS trouble) is opened again.
  async #follow(first: AsyncIterable<KvWatchEntry>): Promise<void> {
    const { log, stopping, connectionClosed } = this.#deps;
    let watch: AsyncIterable<KvWatchEntry> | undefined = first;
    while (!stopping()) {
      try {
        watch ??= await this.#open();
        for await (const e of watch) {
          this.#remember(e);
          // The last of the bucket's values at the start (or anything after it): the set is complete from now on.
          if (e.isUpdate || e.delta === 0) this.#caughtUp = true;
          if (e.operation !== "PUT") continue;
          const first = this.#waiters.get(e.key);
          if (first) {
            log.info({ runId: e.key }, "cancellation asked for: aborting the run");
            // A fired watch's listener may dispose it (and so unlink it): read on before firing.
            let w: RunWatch | undefined = first;
            while (w) {
              const next: RunWatch | undefined = w.next;
              w.fire();
              w = next;
            }
          }
        }
      } catch (err) {
        if (!stopping()) log.warn({ err }, "watching the cancellations bucket failed; watching again");
      }
      // Cancels may land while no watch is open: ask the bucket until the next one has caught up.
      this.#caughtUp = false;
      watch = undefined;
      if (!stopping() && !connectionClosed()) await sleep(1000);
      if (connectionClosed()) return;
    }
  }
}
