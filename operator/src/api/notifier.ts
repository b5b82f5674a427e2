import { isTerminal, type Run, type RunState } from "@offload/sdk/internal";
import type { RunChange } from "../store/events.js";

/** What a change listener of {@link RunNotifier.watchStates} reads. */
export interface RunHead {
  readonly id: string;
  readonly task: string;
  readonly state: RunState;
}

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
  readonly #states = new Set<(head: RunHead) => void>();

  /** Tells watchers of `run.id` about its new state, and waiters once it finished. */
  notify(run: Run): void {
    this.changed({ id: run.id, task: run.task, state: run.state, run: () => run });
  }

  /**
   * The same for a change whose whole run is built on demand: built only if
   * a waiter, a watcher of that run or of every run wants it (most changes
   * under load have none but {@link watchStates}' listeners).
   */
  changed(change: RunChange): void {
    for (const listen of this.#states) listen(change);
    const watchers = this.#watchers.get(change.id);
    if (watchers) for (const watch of watchers) watch(change.run());
    for (const watch of this.#all) watch(change.run());
    if (!isTerminal(change.state)) return;
    const set = this.#waiters.get(change.id);
    if (!set) return;
    this.#waiters.delete(change.id);
    const run = change.run();
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

  /**
   * Calls `listener` with the id, task and new state of every run this process
   * changes, until the returned function is called: for listeners that read no
   * more (admission), so that the whole run is not built for them.
   */
  watchStates(listener: (head: RunHead) => void): () => void {
    this.#states.add(listener);
    return () => void this.#states.delete(listener);
  }
}
