import { isTerminal, type Run } from "@offload/sdk/internal";

/**
 * Wakes result long-polls in this process as soon as the event materializer
 * records that their run finished. Other replicas' long-polls learn it from
 * their periodic re-read of the database instead.
 */
export class RunNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Tells waiters of `run.id` that it finished (no-op while it has not). */
  notify(run: Run): void {
    if (!isTerminal(run.state)) return;
    const set = this.#waiters.get(run.id);
    if (!set) return;
    this.#waiters.delete(run.id);
    for (const wake of set) wake();
  }

  /**
   * Registers interest in `id` before the caller reads the run, so a finish
   * between the read and the wait is not missed. `wait(ms)` resolves on the
   * first of: the run finishes, `ms` passes, `signal` aborts.
   */
  subscribe(id: string): { wait(ms: number, signal?: AbortSignal): Promise<void>; cancel(): void } {
    let woken = false;
    let wake: () => void = () => {
      woken = true;
    };
    const entry = (): void => wake();
    const set = this.#waiters.get(id) ?? new Set();
    set.add(entry);
    this.#waiters.set(id, set);
    const cancel = (): void => {
      const s = this.#waiters.get(id);
      s?.delete(entry);
      if (s?.size === 0) this.#waiters.delete(id);
    };
    return {
      cancel,
      wait: (ms, signal) =>
        new Promise<void>((resolve) => {
          if (woken || signal?.aborted) return resolve();
          const done = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve();
          };
          const timer = setTimeout(done, ms);
          signal?.addEventListener("abort", done, { once: true });
          wake = () => {
            woken = true;
            done();
          };
        }),
    };
  }

  /** Number of runs being waited for (for tests and metrics). */
  get size(): number {
    return this.#waiters.size;
  }
}
