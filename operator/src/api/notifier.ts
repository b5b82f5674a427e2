import { isTerminal, type Run } from "@offload/sdk/internal";

/**
 * Tells the readers in this process about a run's changes as soon as this
 * process records them (an event materialized, a dispatch, a cancel): result
 * long-polls wake when it finishes, event streams see every change. Changes
 * recorded by other replicas reach them through their periodic re-read of
 * the database instead.
 */
export class RunNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #watchers = new Map<string, Set<(run: Run) => void>>();

  /** Tells watchers of `run.id` about its new state, and waiters once it finished. */
  notify(run: Run): void {
    for (const watch of this.#watchers.get(run.id) ?? []) watch(run);
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

  /** Calls `listener` with the run after each change this process records, until the returned function is called. */
  watch(id: string, listener: (run: Run) => void): () => void {
    const set = this.#watchers.get(id) ?? new Set();
    set.add(listener);
    this.#watchers.set(id, set);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#watchers.get(id) === set) this.#watchers.delete(id);
    };
  }

  /** Number of runs being waited for or watched (for tests and metrics). */
  get size(): number {
    return new Set([...this.#waiters.keys(), ...this.#watchers.keys()]).size;
  }
}
