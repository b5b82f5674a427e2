/**
 * The contract every system the bench compares fulfils: Offload on
 * PostgreSQL and on its embedded PGlite database, BullMQ (the peer), and a raw
 * JetStream loop (the floor). The workloads in `bench/workloads/` only talk to
 * this interface, so all of them run exactly the same workload code.
 */

export const SYSTEMS = ["offload", "offload-pglite", "bullmq", "jetstream"] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The systems that are Offload (one per database): the ones the ratio columns and the targets divide by a peer. */
export const OFFLOAD_SYSTEMS = ["offload", "offload-pglite"] as const satisfies readonly SystemName[];
export type OffloadSystemName = (typeof OFFLOAD_SYSTEMS)[number];

export function isOffload(name: SystemName): name is OffloadSystemName {
  return (OFFLOAD_SYSTEMS as readonly SystemName[]).includes(name);
}

/**
 * Where a submitted no-op run goes. `idle`: a queue no worker consumes, so the
 * accept workloads time the producer side alone and leave nothing for the
 * workers. `work`: the queue the N worker processes consume.
 */
export type Lane = "idle" | "work";

/** When a worker started a run and when the system recorded it completed, in ms since the epoch (see `clock.ts`). */
export interface RunTimes {
  startedAt: number;
  completedAt: number;
  /**
   * When the worker finished, where the system records that apart from
   * `completedAt` (Offload: the worker's `finishedAt`, before the run API has
   * recorded the outcome). Unset where the two are one step.
   */
  workerFinishedAt?: number;
}

/** A process of the system whose memory and CPU time the bench reports. */
export interface ProcessUsage {
  /** What it is: `offload-api`, `worker` (one entry per worker process), `nats-server`, `redis-server`, `postgres` (one per server process). */
  component: string;
  pid: number;
  /** Peak resident set size so far (VmHWM), bytes. */
  peakRssBytes: number;
  /** CPU time (user + system) since it started, seconds. */
  cpuSeconds: number;
}

export interface SystemStartOptions {
  /** Worker processes to start, each running `concurrency` runs at a time. */
  workers: number;
  concurrency: number;
  /** Log level for the system's own processes, where it has one. */
  logLevel: string;
  /** Progress and diagnostics go here (stderr), never to stdout. */
  log(msg: string): void;
}

export interface SystemUnderTest {
  readonly name: SystemName;
  /** What was measured, with versions: e.g. `BullMQ 5.61.0 on redis-server 7.0.15`. */
  readonly description: string;
  /**
   * Submits one no-op run, the way an app would (`task.delay()`,
   * `queue.add()`, `js.publish()`), and resolves with its id once the system
   * has accepted it. `i` is a sequence number the payload may carry.
   */
  submitOne(lane: Lane, i: number): Promise<string>;
  /**
   * Submits `n` no-op runs in one call (`.map(..., {deferred: true})`,
   * `queue.addBulk()`, pipelined publishes) and resolves with their ids, in
   * order, once every one is accepted.
   */
  submitBatch(lane: Lane, from: number, n: number): Promise<string[]>;
  /**
   * Resolves once every run in `ids` (all submitted to the `work` lane) has
   * completed, with the times of each. Calls `onProgress(completed)` about
   * once a second. Rejects if a run failed or `timeoutMs` passed first, saying
   * how many had completed. Runs of earlier workloads may still be in the
   * system's records: only `ids` count.
   */
  awaitCompleted(ids: readonly string[], o: { timeoutMs: number; onProgress(completed: number): void }): Promise<Map<string, RunTimes>>;
  /** Memory and CPU time so far of each of its processes: every worker, plus its server(s). */
  processes(): Promise<ProcessUsage[]>;
  /**
   * For the error of a workload that failed (a submit that got ECONNRESET
   * says nothing of why): which of its own processes has exited, with the end
   * of its output, or that all are running, with the end of its server's.
   */
  explain?(): string;
  /** Stops every process and removes every folder the system started; safe to call twice, and after a failed start. */
  stop(): Promise<void>;
}

export type StartSystem = (o: SystemStartOptions) => Promise<SystemUnderTest>;
