import type { Logger } from "pino";
import type { Task } from "../task.js";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Most runs in flight in this process, across all its tasks. @defaultValue 4 */
  concurrency?: number;
  /** NATS servers. @defaultValue `OFFLOAD_NATS_URL`, else `nats://127.0.0.1:4222` */
  natsUrl?: string | string[];
  /** How long `stop()` lets in-flight runs finish before abandoning them (they are redelivered). @defaultValue 30 */
  drainSeconds?: number;
  /** Logger. @defaultValue a pino logger at `OFFLOAD_LOG_LEVEL` (info) */
  logger?: Logger;
  /** This process's id in run records. @defaultValue `<hostname>-<pid>-<random>` */
  workerId?: string;
}

/** A running task worker. */
export interface Server {
  readonly workerId: string;
  /** Runs executing now. */
  readonly inFlight: number;
  /** True once connected and consuming. */
  readonly ready: boolean;
  /** Stops pulling, lets in-flight runs finish (up to `drainSeconds`), then closes. */
  stop(): Promise<void>;
  /** Resolves when the server has stopped (after `stop()`, or when the NATS connection closed for good). */
  readonly closed: Promise<void>;
}

/** Serves `tasks` in this process: pulls their runs from NATS and executes them. */
export async function serve(_tasks: readonly Task[], _options: ServeOptions = {}): Promise<Server> {
  throw new Error("serve(): being implemented");
}
