/**
 * Calls the user code that runs around runs, so that none of it can break a
 * run or the worker: serve()'s own hooks (`runStarted`, `runFinished`, for
 * metrics) run inline and what they throw is logged; a task's `onCompletion`
 * and `onFailure` run in the background, after the run's outcome is
 * published and acked, and are tracked so that stop() can wait for them.
 */
import type { Logger } from "pino";
import type { RunError } from "../protocol/index.js";
import type { RunInfo, RunOutcome, ServeHooks } from "./index.js";

export class Hooks {
  readonly #hooks: ServeHooks;
  readonly #log: Logger;
  // onCompletion/onFailure calls still running: stop() waits for them (within the drain time).
  readonly #taskHooks = new Set<Promise<void>>();

  constructor(hooks: ServeHooks, log: Logger) {
    this.#hooks = hooks;
    this.#log = log;
  }

  // No closure nor spread per call: these run for every run.
  runStarted(info: RunInfo): void {
    if (!this.#hooks.runStarted) return;
    try {
      this.#hooks.runStarted(info);
    } catch (err) {
      this.#threw(err);
    }
  }

  runFinished(info: RunInfo, outcome: RunOutcome, durationSeconds: number, error?: RunError): void {
    if (!this.#hooks.runFinished) return;
    const finished: Parameters<NonNullable<ServeHooks["runFinished"]>>[0] = { runId: info.runId, task: info.task, attempt: info.attempt, outcome, durationSeconds };
    if (error) finished.error = error;
    try {
      this.#hooks.runFinished(finished);
    } catch (err) {
      this.#threw(err);
    }
  }

  /** Starts a task's hook `name` in the background; what it throws is logged on `log`. */
  task(name: string, log: Logger, fn: () => void | Promise<void>): void {
    const p = Promise.resolve()
      .then(fn)
      .catch((err: unknown) => log.error({ err }, `the task's ${name} hook threw; the run's outcome stands`))
      .finally(() => this.#taskHooks.delete(p));
    this.#taskHooks.add(p);
  }

  /** Task hooks running now. */
  get taskHooksRunning(): number {
    return this.#taskHooks.size;
  }

  /** Resolves once every task hook running now has ended. */
  async taskHooksDone(): Promise<void> {
    await Promise.allSettled([...this.#taskHooks]);
  }

  #threw(err: unknown): void {
    this.#log.warn({ err }, "a serve() hook threw");
  }
}
