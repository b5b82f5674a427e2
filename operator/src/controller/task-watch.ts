import type { OffloadClient, TaskInfo } from "@offload/sdk/internal";
import type { Logger } from "pino";
import { messageOf } from "./kube.js";
import { realClock, type Clock } from "./queue.js";

/** What the watch knows of the run API's task list. */
export type TaskWatchState =
  | { ok: true; tasks: readonly TaskInfo[]; version: string }
  | { ok: false; /** Why there is no list: the run API's last answer failed, with this message. */ message: string };

/** A change of the task list, as {@link TaskWatchOptions.onChange} is told it. */
export interface TaskListChange {
  /** The list now, or why there is none. */
  state: TaskWatchState;
  /**
   * Names of the tasks whose load changed: backlog, in-flight count, or a
   * worker's concurrency or in-flight count, including tasks that appeared or
   * went. Every task known before or after when the list became available or
   * unavailable.
   */
  changed: ReadonlySet<string>;
}

/** Options of {@link TaskWatch}. */
export interface TaskWatchOptions {
  /** The run API client (its request timeout should be short: the wait is added on top). */
  client: Pick<OffloadClient, "pollTasks">;
  log: Logger;
  /**
   * Called after each change of the list (never for an answer with the same
   * load), and when the run API stops or starts answering. Keep it cheap (it
   * runs on the watch's loop): e.g. enqueue the TaskWorkers of the changed tasks.
   */
  onChange?(change: TaskListChange): void;
  /** Seconds each long-poll waits for a change before asking again. @defaultValue 30 */
  waitSeconds?: number;
  /**
   * Least time between the starts of two calls. A call made after a quiet
   * spell is sent at once and answered at the first change (new backlog is
   * seen within the moment); while the load changes all the time (workers
   * taking and finishing runs) the controller asks at most this often.
   * @defaultValue 1000
   */
  minIntervalMs?: number;
  /** First wait after a failed call; doubled per failure in a row. @defaultValue 250 */
  retryBaseMs?: number;
  /** Longest wait between tries while the run API is down. @defaultValue 10000 */
  retryMaxMs?: number;
  /** @defaultValue the real clock */
  clock?: Clock;
}

/**
 * The run API's task list, kept current by one long-poll loop per controller
 * (`GET /v1/tasks?since=<version>&wait=…`), not a request per TaskWorker: the
 * run API answers as soon as the load changes (new runs on any replica,
 * workers taking or finishing runs), so new backlog reaches the controller
 * within a read of the run API's 250 ms throttle. When the run API fails, the
 * loop retries with backoff and never throws; meanwhile the state says why
 * there is no list (so an autoscaler does not scale down on missing data).
 *
 * Wiring (controller.ts): `new TaskWatch({ client, log, onChange })`, `start()`
 * with the informers, `stop()` with them; `get()` and `state()` serve the
 * backlogs, the autoscaler and the TaskRuns' NoWorker check; `onChange`
 * enqueues the TaskWorkers whose load changed.
 */
export class TaskWatch {
  readonly #o: Required<Omit<TaskWatchOptions, "onChange">> & Pick<TaskWatchOptions, "onChange">;
  #state: TaskWatchState | undefined;
  /** Resolves once the first answer (or failure) is in. */
  #first: Promise<void>;
  #firstDone!: () => void;
  #stop = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: TaskWatchOptions) {
    this.#o = { waitSeconds: 30, minIntervalMs: 1000, retryBaseMs: 250, retryMaxMs: 10_000, clock: realClock, ...options };
    this.#first = new Promise((r) => (this.#firstDone = r));
  }

  /** Starts the loop (once). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ends the loop, aborting the wait in flight; resolves once it ended. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#firstDone();
    await this.#loop;
  }

  /** The state now; undefined before the first answer. */
  state(): TaskWatchState | undefined {
    return this.#state;
  }

  /** The state once the first answer (or failure) is in. */
  async settled(): Promise<TaskWatchState> {
    await this.#first;
    return this.#state ?? { ok: false, message: "the task watch stopped before the run API answered" };
  }

  /** The task list once the first answer is in, or undefined while the run API does not answer. */
  async get(): Promise<TaskInfo[] | undefined> {
    const s = await this.settled();
    return s.ok ? [...s.tasks] : undefined;
  }

  async #run(): Promise<void> {
    const { client, log, clock } = this.#o;
    let failures = 0;
    const signal = this.#stop.signal;
    let lastCallAt = Number.NEGATIVE_INFINITY;
    while (!signal.aborted) {
      const since = this.#state?.ok ? this.#state.version : undefined;
      await this.#pause(lastCallAt + this.#o.minIntervalMs - clock.now());
      if (signal.aborted) break;
      lastCallAt = clock.now();
      try {
        const list = await client.pollTasks({ ...(since !== undefined ? { since } : {}), waitSeconds: since === undefined ? 0 : this.#o.waitSeconds, signal });
        if (failures > 0) log.info({ failures }, "run API answers the task list again");
        failures = 0;
        if (list.version !== since) this.#set({ ok: true, tasks: list.tasks, version: list.version });
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const message = `the run API's task list is unavailable: ${messageOf(err)}`;
        if (this.#state?.ok !== false) log.warn({ err: messageOf(err) }, "cannot read the run API's task list; retrying with backoff");
        if (this.#state?.ok !== false || this.#state.message !== message) this.#set({ ok: false, message });
        await this.#pause(Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** Math.min(failures - 1, 20)));
      }
    }
  }

  /** Waits `ms` (nothing for 0 or less), or until stopped. */
  #pause(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const onAbort = (): void => (t.cancel(), resolve());
      const t = this.#o.clock.setTimeout(() => (signal.removeEventListener("abort", onAbort), resolve()), ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  #set(next: TaskWatchState): void {
    const before = this.#state;
    this.#state = next;
    this.#firstDone();
    const changed = changedTasks(before?.ok ? before.tasks : undefined, next.ok ? next.tasks : undefined);
    if (before === undefined || changed.size > 0 || before.ok !== next.ok) {
      try {
        this.#o.onChange?.({ state: next, changed });
      } catch (err) {
        this.#o.log.warn({ err: messageOf(err) }, "task list change handler failed");
      }
    }
  }
}

/**
 * The names of the tasks whose load differs between two lists (backlog,
 * in-flight, workers' concurrency and in-flight; not heartbeat times),
 * including tasks in only one of them. A missing list counts as empty.
 */
export function changedTasks(before: readonly TaskInfo[] | undefined, after: readonly TaskInfo[] | undefined): Set<string> {
  const key = (t: TaskInfo): string =>
    JSON.stringify([t.backlog, t.inFlight, t.workers.map((w) => [w.workerId, w.concurrency, w.inFlight]).sort((a, b) => (a[0]! < b[0]! ? -1 : 1))]);
  const was = new Map((before ?? []).map((t) => [t.name, key(t)]));
  const out = new Set<string>();
  for (const t of after ?? []) {
    if (was.get(t.name) !== key(t)) out.add(t.name);
    was.delete(t.name);
  }
  for (const name of was.keys()) out.add(name);
  return out;
}
