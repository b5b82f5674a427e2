/**
 * `ctx.progress(...)`: checks a report where the task makes it (a bad one
 * throws there), and coalesces reports into at most one message per run per
 * interval, so a task reporting in a tight loop costs NATS and the database a
 * few messages a second, not one per call. The last report is always sent,
 * and before the run's outcome (see {@link ProgressCoalescer.close}).
 */
import { InvalidProgressError } from "../errors.js";
import { MAX_PROGRESS_MESSAGE, type RunProgress } from "../protocol/index.js";

/** A progress report as a task gives it: a fraction, or units done of a total; with an optional message. */
export type ProgressReport =
  | { value: number; message?: string; done?: number; total?: number }
  | { done: number; total: number; message?: string; value?: number };

/** The shortest time between two progress messages of one run. */
export const PROGRESS_INTERVAL_MS = 250;

const finite = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n);

/** The report `ctx.progress(...)` was called with, checked; throws {@link InvalidProgressError}. */
export function progressOf(args: readonly unknown[]): Omit<RunProgress, "updatedAt"> {
  const [first, second] = args;
  const report: Partial<Record<"value" | "done" | "total" | "message", unknown>> =
    typeof first === "object" && first !== null ? (first as Record<string, unknown>) : { value: first, message: second };
  const { done, total, message } = report;
  if (message !== undefined && typeof message !== "string") throw new InvalidProgressError(`message must be a string, not ${typeof message}`);
  if ((done === undefined) !== (total === undefined)) throw new InvalidProgressError("give done and total together");
  const counted = done !== undefined;
  if (counted) {
    if (!finite(done) || done < 0) throw new InvalidProgressError(`done must be a finite number >= 0, not ${String(done)}`);
    if (!finite(total) || total <= 0) throw new InvalidProgressError(`total must be a finite number > 0, not ${String(total)}`);
    if (done > total) throw new InvalidProgressError(`done (${done}) must not exceed total (${total})`);
  }
  const value = report.value ?? (counted ? (done as number) / (total as number) : undefined);
  if (value === undefined) throw new InvalidProgressError("give a value from 0 to 1, or done and total");
  if (!finite(value) || value < 0 || value > 1) throw new InvalidProgressError(`value must be a finite number from 0 to 1, not ${String(value)}`);
  return {
    value,
    ...(message !== undefined ? { message: clip(message) } : {}),
    ...(counted ? { done: done as number, total: total as number } : {}),
  };
}

// A status line, not a log: a longer message is cut rather than refused, so a long file name never fails a task.
const clip = (message: string): string => (message.length <= MAX_PROGRESS_MESSAGE ? message : `${message.slice(0, MAX_PROGRESS_MESSAGE - 1)}…`);

/**
 * Sends a run's progress reports, at most one per `intervalMs`: the first at
 * once, then the latest of those made meanwhile when the interval is over.
 * One send at a time; a send that fails is given to `onError` and dropped
 * (progress is a hint: it must never fail the run or hold it up for long).
 */
export class ProgressCoalescer {
  readonly #send: (progress: RunProgress) => Promise<void>;
  readonly #onError: (err: unknown) => void;
  readonly #intervalMs: number;
  /** The report not yet sent, and when it was made (turned into text only when sent: a tight loop pays for one). */
  #pending: { progress: Omit<RunProgress, "updatedAt">; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #closed = false;
  #lastStamp = 0;

  constructor(send: (progress: RunProgress) => Promise<void>, onError: (err: unknown) => void, intervalMs = PROGRESS_INTERVAL_MS) {
    this.#send = send;
    this.#onError = onError;
    this.#intervalMs = intervalMs;
  }

  /** Takes a report (the newest replaces one not yet sent); ignored once the run has ended. */
  report(progress: Omit<RunProgress, "updatedAt">): void {
    if (this.#closed) return;
    this.#pending = { progress, at: Date.now() };
    this.#schedule();
  }

  /**
   * Ends reporting: later reports are ignored. With `flush`, waits for the
   * send under way and sends the report not yet sent, so the run's last
   * report is stored before its outcome (they travel on one subject, in order).
   */
  async close(flush: boolean): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!flush) return;
    await this.#inFlight;
    const last = this.#pending;
    this.#pending = undefined;
    if (last) await this.#send(this.#stamped(last)).catch(this.#onError);
  }

  // Each report sent is newer than the one before, by a millisecond at least: the run API keeps the newest.
  #stamped({ progress, at }: { progress: Omit<RunProgress, "updatedAt">; at: number }): RunProgress {
    this.#lastStamp = Math.max(at, this.#lastStamp + 1);
    return { ...progress, updatedAt: new Date(this.#lastStamp).toISOString() };
  }

  #schedule(): void {
    if (this.#timer || this.#inFlight) return;
    const wait = this.#lastSentAt + this.#intervalMs - performance.now();
    if (wait <= 0) return this.#sendPending();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sendPending();
    }, wait);
  }

  #sendPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    this.#lastSentAt = performance.now();
    this.#inFlight = this.#send(this.#stamped(pending))
      .catch(this.#onError)
      .finally(() => {
        this.#inFlight = undefined;
        if (this.#pending && !this.#closed) this.#schedule();
      });
  }
}
