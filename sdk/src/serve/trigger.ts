/**
 * A one-shot event with one listener at a time: how a run hears that it was
 * cancelled or abandoned. It costs a run one small object, where a promise
 * raced against the task's (and the reactions racing it) cost several: a
 * no-op run's allocations are what the worker's GC time is made of.
 */
export class Trigger {
  #fired = false;
  #listener: (() => void) | undefined;

  /** True once {@link fire} was called. */
  get fired(): boolean {
    return this.#fired;
  }

  /** Fires once (later calls do nothing), calling the listener if there is one. */
  fire(): void {
    if (this.#fired) return;
    this.#fired = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }

  /** Calls `fn` when fired (at once if it has been), instead of the listener before; `undefined` removes it. */
  listen(fn: (() => void) | undefined): void {
    if (fn && this.#fired) return fn();
    this.#listener = fn;
  }
}
