import { isTerminal, type Run } from "@offload/sdk/internal";

/**
 * Tells the readers in this process about a run's changes as soon as this
 * process records them (an event materialized, a dispatch, a cancel): result
 * long-polls wake when it finishes, event streams see every change. Changes
 * recorded by other replicas reach them through their periodic re-read of
 * the database instead.
 */
export class RunNotifier {
  readonly #waiters = new Map<string, Set<(run: Run) => void>>();
  readonly #watchers = new Map<string, Set<(run: Run) => void>>();
  readonly #all = new Set<(run: Run) => void>();

  /** Tells watchers of `run.id` about its new state, and waiters once it finished. */
  notify(run: Run): void {
    for (const watch of this.#watchers.get(run.id) ?? []) watch(run);
    for (const watch of this.#all) watch(run);
    if (!isTerminal(run.state)) return;
    const set = this.#waiters.get(run.id);
    if (!set) return;
    this.#waiters.delete(run.id);
    for (const wake of set) wake(run);
  }

  /**
   * Registers interest in `id` before the caller reads the run, so a finish
   * between the read and the wait is not missed. `wait(ms)` resolves on the
   * first of: the run finishes (with the finished run), `ms` passes, `signal`
   * aborts (both with undefined). It may be called again after a timeout.
   */
  subscribe(id: string): { wait(ms: number, signal?: AbortSignal): Promise<Run | undefined>; cancel(): void } {
    let woken: Run | undefined;
    let wake = (run: Run): void => {
      woken = run;
    };
    const entry = (run: Run): void => wake(run);
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
        new Promise<Run | undefined>((resolve) => {
          if (woken || signal?.aborted) return resolve(woken);
          const done = (): void => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            resolve(woken);
          };
          const timer = setTimeout(done, ms);
          signal?.addEventListener("abort", done, { once: true });
          wake = (run) => {
            woken = run;
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

  /** Calls `listener` with every run after each change this process records (the dashboard's live list), until the returned function is called. */
  watchAll(listener: (run: Run) => void): () => void {
    this.#all.add(listener);
    return () => void this.#all.delete(listener);
  }
}
