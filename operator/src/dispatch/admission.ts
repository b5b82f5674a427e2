import { isTerminal, type Run } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { TaskRegistry } from "../registry/types.js";
import { admitTask, tasksWithHeldRuns, type PassOutcome } from "../store/admission.js";
import type { Db } from "../store/db.js";
import { NatsDisconnectedError } from "./connection.js";
import { publishRuns, type DispatchBus } from "./publisher.js";

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** The safety net: every limited task gets a pass this often (ms), whatever else triggers one. @defaultValue 1000 */
  intervalMs?: number;
  /** Most runs one pass dispatches. @defaultValue 1000 */
  maxPerPass?: number;
  /** Called with every run a pass changed: dispatched, or held with a new reason (feeds the event streams). */
  onChanged?(run: Run): void;
  /** Called after each pass with what it did (metrics). */
  onPass?(task: string, outcome: PassOutcome): void;
}

/** How many tasks' passes may run at once: each holds a database connection while it publishes. */
const PARALLEL = 2;
/**
 * A task whose last pass here left nothing waiting gets a safety-net pass only every this many ticks: new held
 * runs come with a trigger of their own (on the replica that recorded them), so the quick tick is for tasks with
 * runs waiting; the slow one covers a replica that died between recording runs and passing them.
 */
const IDLE_EVERY = 10;

/**
 * Decides when the runs of limited tasks start: the run API's admission
 * scheduler, one per replica. A pass ({@link admitTask}) for a task is
 * triggered after a submit or a sweep held runs of it, after an outcome that
 * frees a slot (a run of it finished or awaits a retry: whichever replica
 * recorded it), when its definition changes, at the moment a full rate
 * window frees a slot, and every `intervalMs` as the safety net across
 * replicas (a slot freed on another replica). Triggers coalesce: a task
 * triggered while its pass runs gets exactly one more pass after it. Passes
 * of one task are serialized across replicas by the database (an advisory
 * lock), so limits hold globally. Tasks without limits never come here.
 */
export class Admission {
  readonly #db: Db;
  readonly #bus: DispatchBus;
  readonly #registry: TaskRegistry;
  readonly #log: Logger;
  readonly #opts: AdmissionOptions;
  /** Tasks that want a pass and are not having one. */
  readonly #dirty = new Set<string>();
  /** Tasks having a pass (a trigger meanwhile makes them dirty again). */
  readonly #running = new Map<string, Promise<void>>();
  /** The next rate-window wake-up per task. */
  readonly #wakes = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  /** Tasks whose last pass on this replica left no run waiting. */
  readonly #idle = new Set<string>();
  /**
   * Tasks whose last pass here failed or could not run (NATS away): the timer tries them again. Needed for a task
   * no longer limited, which the timer does not otherwise visit: its held runs would stay held until a restart.
   */
  readonly #failed = new Set<string>();
  #ticks = 0;
  #interval: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(db: Db, bus: DispatchBus, registry: TaskRegistry, log: Logger, opts: AdmissionOptions = {}) {
    this.#db = db;
    this.#bus = bus;
    this.#registry = registry;
    this.#log = log.child({ component: "admission" });
    this.#opts = opts;
  }

  /** True when runs of `task` wait in the run API for admission (it has a concurrency or rate limit). */
  holds(task: string): boolean {
    return this.#registry.limited().has(task);
  }

  /** The limited tasks now. */
  limited(): ReadonlySet<string> {
    return this.#registry.limited();
  }

  /**
   * Starts the safety-net timer and the triggers on definition changes, and
   * gives a pass to every task with held runs (one whose limits are gone lets
   * them all go).
   */
  async start(): Promise<void> {
    this.#unsubscribe = this.#registry.onChange((task) => this.trigger(task));
    const interval = this.#opts.intervalMs ?? 1000;
    this.#interval = setInterval(() => {
      const all = ++this.#ticks % IDLE_EVERY === 0;
      for (const task of this.#registry.limited()) if (all || !this.#idle.has(task)) this.trigger(task);
      for (const task of this.#failed) this.trigger(task);
    }, interval);
    this.#interval.unref();
    try {
      for (const task of await tasksWithHeldRuns(this.#db)) this.trigger(task);
    } catch (err) {
      // The tasks still limited get their passes from the timer; one whose limits are gone waits for a restart.
      this.#log.warn({ err }, "could not read which tasks have held runs; the periodic passes go on");
    }
  }

  /** Runs were recorded (or re-entered) held: tell the streams, and give their tasks a pass. */
  held(runs: readonly Run[]): void {
    for (const run of runs) this.#opts.onChanged?.(run);
    for (const task of new Set(runs.map((r) => r.task))) this.trigger(task);
  }

  /**
   * A run changed on this replica (an event materialized, a cancel, a max
   * deliveries failure): a run of a limited task that finished or awaits a
   * retry may have freed a slot, so its task gets a pass.
   */
  changed(run: Pick<Run, "task" | "state">): void {
    if ((isTerminal(run.state) || run.state === "AWAITING_RETRY") && this.holds(run.task)) this.trigger(run.task);
  }

  /** Asks for a pass of `task` soon (coalesced with any already asked for). */
  trigger(task: string): void {
    if (this.#stopped) return;
    this.#dirty.add(task);
    this.#kick();
  }

  #kick(): void {
    for (const task of [...this.#dirty]) {
      if (this.#running.size >= PARALLEL) return;
      if (this.#running.has(task)) continue;
      this.#dirty.delete(task);
      const pass = this.#pass(task).finally(() => {
        this.#running.delete(task);
        this.#kick();
      });
      this.#running.set(task, pass);
    }
  }

  async #pass(task: string): Promise<void> {
    // Nothing could be published: a pass would only roll back. The timer asks again.
    if (!this.#bus.link.connected) {
      this.#failed.add(task);
      return;
    }
    const def = this.#registry.get(task);
    try {
      const outcome = await admitTask(
        this.#db,
        task,
        def ? { concurrency: def.concurrency, rateLimit: def.rateLimit } : undefined,
        async (runs) => {
          const { failed } = await publishRuns(this.#bus, runs);
          // Roll the pass back rather than record half of it dispatched; the published ones are deduplicated next time.
          if (failed.length) throw new AggregateError(failed, `could not publish ${failed.length} of ${runs.length} admitted runs`);
        },
        { maxPerPass: this.#opts.maxPerPass },
      );
      for (const r of outcome.dispatched) this.#opts.onChanged?.(r.run);
      for (const run of outcome.reasonChanged) this.#opts.onChanged?.(run);
      this.#opts.onPass?.(task, outcome);
      this.#failed.delete(task);
      if (outcome.waiting === 0) this.#idle.add(task);
      else this.#idle.delete(task);
      if (outcome.dispatched.length) this.#log.debug({ task, dispatched: outcome.dispatched.length, waiting: outcome.waiting }, "admitted runs");
      if (outcome.more) this.trigger(task);
      if (outcome.wakeAt !== undefined) this.#wakeAt(task, outcome.wakeAt);
    } catch (err) {
      const reason = err instanceof AggregateError && err.errors[0] instanceof NatsDisconnectedError ? { reason: err.message } : { err };
      this.#log.warn({ ...reason, task }, "admission pass failed; the next one retries");
      this.#failed.add(task);
    }
  }

  /** A pass for `task` at `at` (when a full rate window frees a slot); keeps the earlier of two. */
  #wakeAt(task: string, at: number): void {
    const current = this.#wakes.get(task);
    if (current && current.at <= at && current.at > Date.now()) return;
    if (current) clearTimeout(current.timer);
    // A few ms late on purpose: the database's clock must see the start leave the window.
    const timer = setTimeout(() => {
      this.#wakes.delete(task);
      this.trigger(task);
    }, Math.max(0, at - Date.now()) + 5);
    timer.unref();
    this.#wakes.set(task, { at, timer });
  }

  /** Stops every timer and trigger; resolves once the passes in progress have finished. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#dirty.clear();
    clearInterval(this.#interval);
    this.#unsubscribe?.();
    for (const { timer } of this.#wakes.values()) clearTimeout(timer);
    this.#wakes.clear();
    await Promise.all(this.#running.values());
  }
}
