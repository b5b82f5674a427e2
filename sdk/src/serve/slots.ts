/**
 * A fair (first come, first served) counting semaphore for run slots.
 * `take(max)` waits for at least one free slot and takes up to `max`, so a
 * pull loop can fetch exactly as many messages as it can start at once.
 * After `close()` every take resolves 0.
 */
export class Slots {
  #free: number;
  #closed = false;
  readonly #waiters: { max: number; resolve: (n: number) => void }[] = [];

  constructor(total: number) {
    this.#free = total;
  }

  take(max: number): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    // Queue behind earlier waiters even if a slot is free, so that one loop cannot keep every slot to itself.
    if (this.#free > 0 && this.#waiters.length === 0) {
      const n = Math.min(max, this.#free);
      this.#free -= n;
      return Promise.resolve(n);
    }
    return new Promise((resolve) => this.#waiters.push({ max, resolve }));
  }

  /** Takes up to `max` free slots now, without waiting (none while others wait, so that it never jumps the queue). */
  takeNow(max: number): number {
    if (this.#closed || this.#waiters.length > 0) return 0;
    const n = Math.min(max, this.#free);
    this.#free -= n;
    return n;
  }

  give(n: number): void {
    if (n <= 0) return;
    this.#free += n;
    while (this.#free > 0 && this.#waiters.length > 0 && !this.#closed) {
      const w = this.#waiters.shift()!;
      const k = Math.min(w.max, this.#free);
      this.#free -= k;
      w.resolve(k);
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.resolve(0);
  }
}
