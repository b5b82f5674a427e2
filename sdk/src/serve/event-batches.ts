/**
 * Gathers the events a worker has ready at the same time into one JetStream
 * message per task subject (a `RunEventBatch`). In the bench, the worker's
 * largest cost was one stored message, one confirmation and one timer per
 * event; a batch pays that once. An event alone goes out on the next turn of
 * the event loop, as it would have alone (no added wait at low load); events
 * arriving while {@link MAX_BATCHES_IN_FLIGHT} publishes are under way wait
 * for one to be confirmed and go together, so a batch grows with the load
 * and the extra wait stays below one publish's round trip. The model is the
 * run API's `SubmitCoalescer` (operator/src/dispatch/coalesce.ts).
 */
import { MAX_EVENT_BATCH } from "../protocol/index.js";

/** Publishes of one subject under way at once; more events wait and join the next batch. */
export const MAX_BATCHES_IN_FLIGHT = 2;

/** One entry to send: its JSON text, and the message id it has when it goes alone. */
export interface Outgoing {
  readonly json: string;
  /** The entry's own message id, used when it is sent as a message of its own. */
  readonly msgID?: string;
}

/** How a group leaves: alone as its own message, or as one batch message. */
export interface BatchSink {
  /** Publishes one entry as a message of its own (retrying as it sees fit); throws once it gave up. */
  single(entry: Outgoing): Promise<void>;
  /** Publishes a `{"events":[...]}` message (retrying with the same message id); throws once it gave up. */
  batch(payload: string): Promise<void>;
  /** Most bytes one message may carry (the server's max_payload, less room for headers). */
  maxBytes(): number;
}

interface Waiting extends Outgoing {
  resolve(): void;
  reject(err: unknown): void;
}

const BATCH_OVERHEAD = '{"events":[]}'.length;

/** The coalescer of one subject: {@link send} resolves once the message carrying the entry is stored. */
export class EventBatcher {
  readonly #sink: BatchSink;
  readonly #waiting: Waiting[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(sink: BatchSink) {
    this.#sink = sink;
  }

  /** Sends `entry` with whatever else is ready meanwhile; rejects if the message carrying it could not be stored. */
  send(entry: Outgoing): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ ...entry, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#scheduled || this.#inFlight >= MAX_BATCHES_IN_FLIGHT || this.#waiting.length === 0) return;
    this.#scheduled = true;
    // After the current I/O phase, so that the outcomes of runs ending in the same phase go out together.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#write(this.#takeGroup());
      this.#kick();
    });
  }

  // The longest run of waiting entries, in order, that fits one message (by count and by bytes).
  #takeGroup(): Waiting[] {
    const limit = this.#sink.maxBytes();
    let bytes = BATCH_OVERHEAD;
    let n = 0;
    for (const w of this.#waiting) {
      if (n >= MAX_EVENT_BATCH) break;
      const next = bytes + Buffer.byteLength(w.json) + (n > 0 ? 1 : 0);
      // The first entry always goes: alone, it is sent as its own message, which fits (the result store saw to that).
      if (n > 0 && next > limit) break;
      bytes = next;
      n++;
    }
    return this.#waiting.splice(0, n);
  }

  async #write(group: Waiting[]): Promise<void> {
    if (group.length === 0) return;
    this.#inFlight++;
    try {
      if (group.length === 1) await this.#sink.single(group[0]!);
      else await this.#sink.batch(`{"events":[${group.map((w) => w.json).join(",")}]}`);
      for (const w of group) w.resolve();
    } catch (err) {
      // Every run whose entry was in the lost message is failed (and released) by its own caller, as if sent alone.
      for (const w of group) w.reject(err);
    } finally {
      this.#inFlight--;
      this.#kick();
    }
  }
}
