import { LRUCache } from "lru-cache";

/** A verdict and how long it may be reused, in ms (capped by the cache's own TTL). */
export interface Timed<V> {
  value: V;
  ttlMs?: number;
}

/**
 * Verdicts of the Kubernetes API server (TokenReview, SubjectAccessReview),
 * reused for a short time and bounded in number: the least recently used go
 * first. Concurrent asks for the same key share one review (lru-cache's
 * `fetch` does that), so a burst of requests with one token makes one call. A
 * review that fails (the API server away) is not kept: the next ask tries again.
 */
export class VerdictCache<V extends object> {
  readonly #ttlMs: number;
  readonly #lru: LRUCache<string, V, () => Promise<Timed<V>>> | undefined;

  /** `clock` tells the time the TTLs are counted in (tests advance one by hand). @defaultValue `performance` */
  constructor(opts: { ttlMs: number; maxEntries: number; clock?: { now(): number } }) {
    this.#ttlMs = opts.ttlMs;
    // A TTL of 0 means "forever" to lru-cache; here it means "ask every time", so there is no cache at all.
    this.#lru =
      opts.ttlMs > 0
        ? new LRUCache<string, V, () => Promise<Timed<V>>>({
            max: opts.maxEntries,
            ttl: opts.ttlMs,
            // A clock given by hand is read on every look (lru-cache otherwise reuses a reading for 1 ms).
            ...(opts.clock ? { perf: opts.clock, ttlResolution: 0 } : {}),
            fetchMethod: async (_key, _stale, { options, context }) => {
              const { value, ttlMs } = await context();
              // A verdict that must not outlive something sooner (a token's expiry) gets a shorter life.
              if (ttlMs !== undefined) options.ttl = Math.max(1, Math.min(this.#ttlMs, ttlMs));
              return value;
            },
          })
        : undefined;
  }

  /** The kept verdict for `key`, else the one `review` gives (kept for next time). Rejects if `review` does. */
  async get(key: string, review: () => Promise<Timed<V>>): Promise<V> {
    if (!this.#lru) return (await review()).value;
    const v = await this.#lru.fetch(key, { context: review });
    // fetch resolves undefined only when the fetch was aborted, which nothing here does.
    if (v === undefined) throw new Error("verdict cache: review aborted");
    return v;
  }

  /** How many verdicts are kept now (stale ones included until they are next touched). */
  get size(): number {
    return this.#lru?.size ?? 0;
  }
}
