import type { Logger } from "pino";
import type { Task } from "../task.js";
import { startServer } from "./server.js";

export { STREAM_CONFIGS, ensureStreams, ensureTaskConsumer, taskConsumerConfig } from "./streams.js";
export type { TaskConsumerSettings } from "./streams.js";
export { ServeEnvSchema } from "./options.js";
export type { ServeEnv } from "./options.js";

/** How a run ended in this process, as told to {@link ServeHooks.runFinished}. */
export type RunOutcome =
  /** The task returned; a `COMPLETED` event was published. */
  | "COMPLETED"
  /** The task threw, timed out, got invalid input or returned something not JSON; a `FAILED` event was published. */
  | "FAILED"
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
}

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
