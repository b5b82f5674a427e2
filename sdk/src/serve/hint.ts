/**
 * A flag with a waiter: set by a message seen on a task's subject (or by
 * stop()), so that an idle pull loop wakes as soon as there may be work
 * instead of holding a slot while it polls.
 */
export class Hint {
  #set = false;
  #wake: (() => void) | undefined;

  get isSet(): boolean {
    return this.#set;
  }

  set(): void {
    this.#set = true;
    this.#wake?.();
  }

  clear(): void {
    this.#set = false;
  }

  /** Resolves true as soon as the flag is set, or false after `ms`. */
  wait(ms: number): Promise<boolean> {
    if (this.#set) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), ms);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(v);
      };
      this.#wake = () => done(true);
    });
  }
}
