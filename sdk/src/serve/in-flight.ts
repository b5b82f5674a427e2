/**
 * The runs this process has in flight, counted per task: heartbeats report
 * the counts, an idle pull loop compares them with its consumer's unacked
 * messages, and stop() waits for the runs or abandons them. Each run holds
 * one slot, taken by the pull loop that fetched it and given back here once
 * the run is done, whichever way it ended.
 */
import type { Logger } from "pino";
import { Trigger } from "./trigger.js";

/** A run in flight: what stop() needs to abandon it (fire `abandoned`) and wait for it. */
interface ActiveRun {
  readonly abandoned: Trigger;
  done: Promise<void> | undefined;
}

export class InFlight {
  readonly #slots: { give(n: number): void };
  readonly #log: Logger;
  readonly #runs = new Set<ActiveRun>();
  readonly #byTask = new Map<string, number>();

  constructor(slots: { give(n: number): void }, log: Logger) {
    this.#slots = slots;
    this.#log = log;
  }

  /** Runs in flight, of every task. */
  get size(): number {
    return this.#runs.size;
  }

  /** Runs of `task` in flight. */
  of(task: string): number {
    return this.#byTask.get(task) ?? 0;
  }

  /**
   * Starts `handle` as a run of `task` on a slot already taken. `abandoned`
   * fires if stop() gives the run up; `handle` should then end it promptly.
   */
  launch(task: string, handle: (abandoned: Trigger) => Promise<void>): void {
    const run: ActiveRun = { abandoned: new Trigger(), done: undefined };
    this.#runs.add(run);
    this.#byTask.set(task, this.of(task) + 1);
    const finished = (): void => {
      this.#runs.delete(run);
      this.#byTask.set(task, (this.#byTask.get(task) ?? 1) - 1);
      this.#slots.give(1);
    };
    // Started now rather than on a later turn (its first await comes soon enough); one reaction for either way it ends.
    let started: Promise<void>;
    try {
      started = handle(run.abandoned);
    } catch (err) {
      started = Promise.reject(err as Error);
    }
    run.done = started.then(finished, (err: unknown) => {
      this.#log.error({ err, task }, "run handling failed");
      finished();
    });
  }

  /** Resolves once every run in flight now is done. */
  async done(): Promise<void> {
    await Promise.allSettled([...this.#runs].map((r) => r.done));
  }

  /** Tells every run in flight that it is abandoned. */
  abandonAll(): void {
    for (const r of [...this.#runs]) r.abandoned.fire();
  }
}
