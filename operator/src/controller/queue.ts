/**
 * A work queue modelled on client-go's `workqueue`: a key is queued at most
 * once however often it is added, is never handed to two workers at once
 * (an add while it is being processed queues it again after `done`), and can
 * be re-added after a delay or with per-item exponential backoff.
 */

/** Time and timers, injectable so tests need not wait for real time. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Options of {@link RateLimiter}; defaults are client-go's `DefaultControllerRateLimiter`. */
export interface RateLimiterOptions {
  /** First retry delay of a failing item. @defaultValue 5 */
  baseDelayMs?: number;
  /** Largest retry delay of a failing item. @defaultValue 1_000_000 (1000 s) */
  maxDelayMs?: number;
  /** Overall retries per second across all items (token bucket). @defaultValue 10 */
  qps?: number;
  /** Token bucket size. @defaultValue 100 */
  burst?: number;
}

/** Per-item exponential backoff combined with an overall token bucket; the larger delay wins. */
export class RateLimiter {
  readonly #failures = new Map<string, number>();
  readonly #base: number;
  readonly #max: number;
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(
    options: RateLimiterOptions = {},
    private readonly clock: Clock = realClock,
  ) {
    this.#base = options.baseDelayMs ?? 5;
    this.#max = options.maxDelayMs ?? 1_000_000;
    this.#qps = options.qps ?? 10;
    this.#burst = options.burst ?? 100;
    this.#tokens = this.#burst;
    this.#last = clock.now();
  }

  /** How long to wait before retrying `key` (and counts the failure). */
  when(key: string): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    const exp = Math.min(this.#max, this.#base * 2 ** Math.min(n, 62));
    return Math.max(exp, this.#bucketDelay());
  }

  /** Resets `key`'s backoff (after it succeeded). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  #bucketDelay(): number {
    const now = this.clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
    this.#tokens -= 1; // reserve a token now; a negative balance is time owed
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#qps) * 1000);
  }
}

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #timers = new Map<string, { at: number; cancel(): void }>();
  #shuttingDown = false;
  readonly limiter: RateLimiter;

  constructor(
    limiter?: RateLimiter,
    private readonly clock: Clock = realClock,
  ) {
    this.limiter = limiter ?? new RateLimiter({}, clock);
  }

  /** Queues `key` unless it is already waiting. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const w = this.#waiters.shift();
    if (w) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      w(key);
    } else this.#queue.push(key);
  }

  /** Queues `key` after `ms`; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const existing = this.#timers.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const t = this.clock.setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    this.#timers.set(key, { at, cancel: t.cancel });
  }

  /** Queues `key` after its backoff delay (call after a failed reconcile). */
  addRateLimited(key: string): number {
    const ms = this.limiter.when(key);
    this.addAfter(key, ms);
    return ms;
  }

  /** Resets `key`'s backoff (call after a successful reconcile). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** The next key to process, waiting for one; `undefined` once shut down. */
  get(): Promise<string | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  /** Keys waiting (not counting delayed ones). */
  get length(): number {
    return this.#queue.length;
  }

  /** Stops handing out keys; pending `get()`s resolve `undefined`. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}
