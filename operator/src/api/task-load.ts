import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Nats, type TaskInfo, type TaskList } from "@offload/sdk/internal";

/** Options of {@link TaskLoadWatch}. */
export interface TaskLoadWatchOptions {
  /**
   * Least time between two reads of the task list (a JetStream consumer
   * listing and a database count) made for waiters, however many wait and
   * however often they are woken. @defaultValue 250
   */
  minIntervalMs?: number;
  /**
   * While anyone waits, the list is read again this often even without a
   * wake-up: for the changes nothing announces (a run redelivered after its
   * ack wait, a worker gone silent). @defaultValue 2000
   */
  rescanMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
}

/**
 * The version of a task list's load: a digest of each task's backlog and
 * in-flight count and each worker's concurrency and in-flight count, in name
 * order. Heartbeat times are left out (they change every few seconds with no
 * change of load). It is a function of the load alone, so replicas that see
 * the same load answer the same version (a replica that started lately knows
 * of fewer workers until their next heartbeats).
 */
export function loadVersion(tasks: readonly TaskInfo[]): string {
  const load = [...tasks]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => [
      t.name,
      t.backlog,
      t.inFlight,
      t.workers.map((w) => [w.workerId, w.concurrency, w.inFlight]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)),
    ]);
  return createHash("sha256").update(JSON.stringify(load)).digest("base64url").slice(0, 22);
}

/**
 * The task list for long-polls (`GET /v1/tasks?since=…&wait=…`): the latest
 * list read, re-read when something may have changed it, with waiters woken
 * when its version changes. Wake-ups come from NATS, so that runs accepted by
 * any replica count: the nudge the run API publishes after dispatching runs
 * of a task, and worker heartbeats that change a worker's load (see
 * `WorkerDirectory.onLoadChange`). Reads are shared and spaced by
 * `minIntervalMs`, so a thousand waiters cost what one does.
 */
export class TaskLoadWatch {
  readonly #read: () => Promise<TaskInfo[]>;
  readonly #minIntervalMs: number;
  readonly #rescanMs: number;
  readonly #now: () => number;
  #latest: (TaskList & { readAt: number }) | undefined;
  /**
   * Reads still owed since the last wake-up. A wake-up owes two: the nudge of
   * new runs comes before they are marked PENDING, so a task no worker has
   * made a consumer for yet may show its backlog only in the second read.
   */
  #owed = 1;
  /** The read in flight or scheduled, shared by everyone who asks meanwhile. */
  #next: Promise<TaskList> | undefined;
  #lastReadAt = Number.NEGATIVE_INFINITY;
  readonly #waiters = new Set<(list: TaskList) => void>();
  #rescan: NodeJS.Timeout | undefined;

  constructor(read: () => Promise<TaskInfo[]>, options: TaskLoadWatchOptions = {}) {
    this.#read = read;
    this.#minIntervalMs = options.minIntervalMs ?? 250;
    this.#rescanMs = options.rescanMs ?? 2000;
    this.#now = options.now ?? Date.now;
  }

  /** Something may have changed the load: read it again soon if anyone waits, else at the next ask. */
  poke(): void {
    this.#owed = 2;
    if (this.#waiters.size > 0) void this.#refresh().catch(() => undefined);
  }

  /**
   * Takes a list read by someone else (a plain `GET /v1/tasks`) as the latest,
   * waking waiters if its version is new.
   */
  observe(tasks: TaskInfo[], readAt: number): TaskList {
    const list = { tasks, version: loadVersion(tasks) };
    if (!this.#latest || readAt >= this.#latest.readAt) this.#publish(list, readAt);
    return list;
  }

  /** The list, read again unless the latest read is recent and nothing announced a change since. */
  async current(): Promise<TaskList> {
    if (this.#latest && this.#owed === 0 && this.#now() - this.#latest.readAt < this.#minIntervalMs) return this.#latest;
    return this.#refresh();
  }

  /**
   * Answers the list once its version is not `since`: at once if it differs
   * already, else at the first change, or after `ms` (or when `signal` aborts)
   * with the unchanged list. Rejects only if reading the list fails.
   */
  async waitForChange(since: string | undefined, ms: number, signal?: AbortSignal): Promise<TaskList> {
    const first = await this.current();
    if (first.version !== since || ms <= 0 || signal?.aborted) return strip(first);
    return new Promise<TaskList>((resolve) => {
      const done = (list: TaskList): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#waiters.delete(onChange);
        if (this.#waiters.size === 0) this.#stopRescans();
        resolve(strip(list));
      };
      const onChange = (list: TaskList): void => {
        if (list.version !== since) done(list);
      };
      const onAbort = (): void => done(this.#latest ?? first);
      const timer = setTimeout(onAbort, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(onChange);
      this.#startRescans();
      // A read that finished between `current()` and here.
      if (this.#latest && this.#latest.version !== since) done(this.#latest);
      else if (this.#owed > 0) void this.#refresh().catch(() => undefined);
    });
  }

  /**
   * Wakes the list on NATS: the run API's nudges of every task (published by
   * any replica after it dispatched runs). `stop()` unsubscribes; waiters end
   * through their own signal or time.
   */
  listen(nc: NatsConnection): { stop(): void } {
    // Task names have no dots, so one token wildcard matches every task's nudge.
    const sub = nc.subscribe(Nats.nudgeSubject("*"), { callback: (err) => void (err || this.poke()) });
    return {
      stop: () => {
        sub.unsubscribe();
        this.#stopRescans();
      },
    };
  }

  #refresh(): Promise<TaskList> {
    this.#next ??= (async () => {
      try {
        // Always a hop first, so that `#next` is set before this body can end.
        await new Promise((r) => setTimeout(r, Math.max(0, this.#lastReadAt + this.#minIntervalMs - this.#now())));
        const readAt = (this.#lastReadAt = this.#now());
        this.#owed = Math.max(0, this.#owed - 1);
        const tasks = await this.#read();
        return this.#publish({ tasks, version: loadVersion(tasks) }, readAt);
      } catch (err) {
        this.#owed = Math.max(1, this.#owed);
        throw err;
      } finally {
        this.#next = undefined;
        // A wake-up that came while reading may not be in what was read.
        if (this.#owed > 0 && this.#waiters.size > 0) void this.#refresh().catch(() => undefined);
      }
    })();
    return this.#next;
  }

  #publish(list: TaskList, readAt: number): TaskList {
    const changed = list.version !== this.#latest?.version;
    this.#latest = { ...list, readAt };
    if (changed) for (const w of [...this.#waiters]) w(list);
    return list;
  }

  #startRescans(): void {
    this.#rescan ??= setInterval(() => this.poke(), this.#rescanMs).unref();
  }

  #stopRescans(): void {
    if (this.#rescan) clearInterval(this.#rescan);
    this.#rescan = undefined;
  }
}

function strip(list: TaskList): TaskList {
  return { tasks: list.tasks, version: list.version };
}
