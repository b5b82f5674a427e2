import type { LogLevel } from "../config.js";
import type { Logger } from "pino";
import type { Task } from "../task.js";
import { startServer } from "./server.js";

export { TASK_MAX_ACK_PENDING, ensureTaskConsumer, taskConsumerConfig } from "./streams.js";
export type { TaskConsumerSettings } from "./streams.js";
export { ServeEnvSchema } from "./options.js";
export type { ServeEnv } from "./options.js";
export { DEFAULT_ACK_WAIT_SECONDS, DEFAULT_MAX_DELIVER, DEFAULT_RESULT_INLINE_LIMIT, DEFAULT_RUNNING_EVENT_DELAY_MS } from "./options.js";

/** How a run ended in this process, as told to {@link ServeHooks.runFinished}. */
export type RunOutcome =
  /** The task returned; a `COMPLETED` event was published. */
  | "COMPLETED"
  /** The task threw, timed out, got invalid input or returned something not JSON, with no retry left; a `FAILED` event was published. */
  | "FAILED"
  /** The try failed and the task has retries left: an `AWAITING_RETRY` event was published; the run API dispatches it again later. */
  | "AWAITING_RETRY"
  /** The run was cancelled while it ran: its signal was aborted and a `CANCELLED` event published. */
  | "CANCELLED"
  /** The worker stopped (or lost NATS) before the run finished; no event, the message is redelivered. */
  | "ABANDONED";

/** What {@link ServeHooks} are told about a run. */
export interface RunInfo {
  readonly runId: string;
  readonly task: string;
  readonly attempt: number;
}

/** Callbacks for metrics and the like. They run inline: keep them fast; what they throw is logged and ignored. */
export interface ServeHooks {
  /** A valid task message was taken and the run is starting. */
  runStarted?(run: RunInfo): void;
  /** A run ended (its event, if any, is published and its message acked or released). */
  runFinished?(run: RunInfo & { outcome: RunOutcome; durationSeconds: number; error?: { type: string; message: string } }): void;
}

/** Options of {@link serve}. Each is checked once at start; a bad one throws a `ConfigError`. */
export interface ServeOptions {
  /** Most runs in flight in this process, across all its tasks. @defaultValue 4 */
  concurrency?: number;
  /** NATS servers. @defaultValue `OFFLOAD_NATS_URL`, else `nats://127.0.0.1:4222` */
  natsUrl?: string | string[];
  /** How long `stop()` lets in-flight runs finish before abandoning them (they are redelivered). @defaultValue 30 */
  drainSeconds?: number;
  /**
   * Seconds JetStream waits for a delivered message to be acked before giving
   * it to another worker. Runs keep their message past it with in-progress
   * acks (every third of it), so this bounds how soon a crashed worker's runs
   * are retried, not how long a run may take. Shared by every process serving
   * a task: the last one to start sets it.
   * @defaultValue `OFFLOAD_ACK_WAIT_SECONDS`, else 30
   */
  ackWaitSeconds?: number;
  /** Logger. @defaultValue a pino logger at `OFFLOAD_LOG_LEVEL` (info) */
  logger?: Logger;
  /** This process's id in run records. @defaultValue `<hostname>-<pid>-<random>` */
  workerId?: string;
  /** Called as runs start and finish (the worker runtime counts them for `/metrics`). */
  hooks?: ServeHooks;
  /**
   * Most deliveries of one task message before JetStream gives up on it (the
   * run API then fails the run with `MaxDeliveriesExceeded`): bounds a message
   * that crashes every worker that takes it. Redeliveries after a crash or a
   * drain count; retries do not (each is a new message). Shared by every
   * process serving a task: the last one to start sets it. -1: no limit.
   * @defaultValue `OFFLOAD_MAX_DELIVER`, else 10
   */
  maxDeliver?: number;
  /**
   * Results whose JSON is larger than this many bytes go to the object store
   * `offload-results` (under the run id) instead of into the `COMPLETED` event;
   * `run.result()` fetches them from there all the same. Results too large for
   * a NATS message always go there.
   * @defaultValue `OFFLOAD_RESULT_INLINE_LIMIT`, else 262144 (256 KiB)
   */
  resultInlineLimitBytes?: number;
  /**
   * Lines a run writes through `ctx.log` at this level or above are also kept
   * with the run (`GET /v1/runs/:id/logs`, `run.logs()`), whatever the
   * logger's own level. `"silent"` keeps none.
   * @defaultValue `OFFLOAD_RUN_LOG_LEVEL`, else "info"
   */
  runLogLevel?: RunLogLevel;
  /**
   * How long a run runs before its `RUNNING` event is sent. A run that ends
   * sooner sends only its outcome, which carries when it started
   * (`startedAt`): watchers of such a run see it go from `PENDING` straight
   * to its outcome, with no `RUNNING` in between, and the worker sends one
   * message for it instead of two. A run that outlives the delay (or reports
   * progress first) shows `RUNNING` as before. 100 ms is below what a person
   * watching a run notices, and above what most short tasks take. If that
   * `RUNNING` cannot be sent, the run carries on (it has started; its outcome
   * records the start); with 0, `RUNNING` is sent before the task is called
   * and a run whose `RUNNING` cannot be sent is released for redelivery
   * without starting.
   * @defaultValue `OFFLOAD_RUNNING_EVENT_DELAY_MS`, else 100
   */
  runningEventDelayMs?: number;
  /**
   * Send the events (and progress reports) that are ready at the same time
   * as one JetStream message per task, rather than one message each: under
   * load, a worker then stores a message per batch of runs, not per event.
   * An event sent alone is sent as before. Set it to false while the run
   * API is older than event batches (it cannot read them): upgrade the run
   * API first.
   * @defaultValue `OFFLOAD_BATCH_EVENTS`, else true
   */
  batchEvents?: boolean;
}

/** The levels of {@link ServeOptions.runLogLevel}. */
export type RunLogLevel = LogLevel;

/** A running task worker. */
export interface Server {
  readonly workerId: string;
  /** The tasks it serves, by name. */
  readonly tasks: readonly string[];
  /** The concurrency it runs with. */
  readonly concurrency: number;
  /** Runs executing now. */
  readonly inFlight: number;
  /** True once connected and consuming; false again once stopping. */
  readonly ready: boolean;
  /**
   * Stops pulling, lets in-flight runs finish (up to `drainSeconds`), then
   * abandons the rest (their signals are aborted and their messages released:
   * JetStream redelivers them, as the next attempt, a few seconds later),
   * drains and closes the NATS connection. Calling it again returns the same promise.
   */
  stop(): Promise<void>;
  /** Resolves when the server has stopped (after `stop()`, or when the NATS connection closed for good). */
  readonly closed: Promise<void>;
}

/**
 * Serves `tasks` in this process: pulls their runs from NATS JetStream and
 * executes them, at most `concurrency` at once, reporting each run's progress
 * as events. Every process serving a task shares one durable consumer, so
 * replicas share the backlog. Resolves once consuming.
 *
 * ```ts
 * const server = await serve([resize, thumbnail], { concurrency: 8 });
 * process.once("SIGTERM", () => void server.stop());
 * ```
 */
export async function serve(tasks: readonly Task[], options: ServeOptions = {}): Promise<Server> {
  return startServer(tasks, options);
}
