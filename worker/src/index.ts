/**
 * `@offload/worker`: the task-worker runtime. The `offload-worker` command
 * wraps {@link runWorker}; embed it directly to serve tasks from your own
 * process with the same probes, metrics and drain.
 *
 * ```ts
 * import { runWorker } from "@offload/worker";
 * const worker = await runWorker({ module: "./dist/tasks.js", concurrency: 8, port: 8081 });
 * process.once("SIGTERM", () => void worker.stop().then(() => process.exit(0)));
 * ```
 */
import { pino, type Logger } from "pino";
import type { Registry } from "prom-client";
import { serve, type RunLogLevel, type Server, type Task } from "@offload/sdk/internal";
import { startProbeServer } from "./http.js";
import { loadTasks } from "./load.js";
import { createMetrics } from "./metrics.js";

export { loadConfig, WorkerEnvSchema, HELP, FLAGS } from "./config.js";
export type { WorkerConfig, Command } from "./config.js";
export { loadTasks } from "./load.js";

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** Path of the task module (relative to `cwd`). Give this or `tasks`. */
  module?: string;
  /** The tasks themselves, instead of a module. */
  tasks?: readonly Task[];
  /** Serve only these tasks of the module, by name. @defaultValue all it exports */
  taskNames?: readonly string[];
  /** Where `module` is resolved from. @defaultValue process.cwd() */
  cwd?: string;
  /** Runs in flight in this process. @defaultValue 4 */
  concurrency?: number;
  /** Seconds {@link Worker.stop} waits for runs in flight. @defaultValue 30 */
  drainSeconds?: number;
  /** NATS servers. @defaultValue `OFFLOAD_NATS_URL`, else nats://127.0.0.1:4222 */
  natsUrl?: string | string[];
  /** Seconds before an unacked run goes to another worker. @defaultValue `OFFLOAD_ACK_WAIT_SECONDS`, else 30 */
  ackWaitSeconds?: number;
  /** HTTP port of the probes and metrics; 0 picks a free one; null serves no HTTP. @defaultValue 8081 */
  port?: number | null;
  /** HTTP bind address. @defaultValue 0.0.0.0 */
  host?: string;
  /** @defaultValue a pino logger at info */
  logger?: Logger;
  /** @defaultValue `<hostname>-<pid>-<random>` */
  workerId?: string;
  /** Deliveries of one task message before JetStream gives up on it; -1: no limit. @defaultValue `OFFLOAD_MAX_DELIVER`, else 10 */
  maxDeliver?: number;
  /** Results larger than this many bytes go to the object store. @defaultValue `OFFLOAD_RESULT_INLINE_LIMIT`, else 262144 */
  resultInlineLimitBytes?: number;
  /** Lowest level of `ctx.log` lines kept with the run. @defaultValue `OFFLOAD_RUN_LOG_LEVEL`, else info */
  runLogLevel?: RunLogLevel;
}

/** A running worker. */
export interface Worker {
  readonly server: Server;
  /** The tasks served, by name. */
  readonly tasks: readonly string[];
  /** The HTTP port of the probes (null if none). */
  readonly port: number | null;
  readonly registry: Registry;
  /** `/readyz` answers 503 from now on; stops pulling, drains runs in flight (up to drainSeconds), closes NATS and HTTP. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once stopped, whether by {@link Worker.stop} or because NATS closed for good. */
  readonly closed: Promise<void>;
}

/**
 * Loads the tasks, starts the probes (`/healthz` at once, `/readyz` 200 once
 * consuming) and serves the tasks. Throws a `ConfigError` for a bad module,
 * task name or option.
 */
export async function runWorker(options: WorkerOptions): Promise<Worker> {
  const logger = options.logger ?? pino({ name: "offload-worker" });
  let tasks: readonly Task[];
  if (options.tasks) tasks = options.tasks;
  else if (options.module) tasks = await loadTasks(options.module, options.taskNames, options.cwd);
  else throw new TypeError("runWorker(): give `module` or `tasks`");

  const concurrency = options.concurrency ?? 4;
  const metrics = createMetrics(concurrency);
  let server: Server | undefined;
  let draining = false;
  const probes =
    options.port === null
      ? undefined
      : await startProbeServer({
          host: options.host ?? "0.0.0.0",
          port: options.port ?? 8081,
          isReady: () => !draining && (server?.ready ?? false),
          registry: metrics.registry,
        });
  try {
    server = await serve(tasks, {
      concurrency,
      logger,
      hooks: metrics.hooks,
      ...(options.natsUrl !== undefined ? { natsUrl: options.natsUrl } : {}),
      ...(options.drainSeconds !== undefined ? { drainSeconds: options.drainSeconds } : {}),
      ...(options.ackWaitSeconds !== undefined ? { ackWaitSeconds: options.ackWaitSeconds } : {}),
      ...(options.workerId !== undefined ? { workerId: options.workerId } : {}),
      ...(options.maxDeliver !== undefined ? { maxDeliver: options.maxDeliver } : {}),
      ...(options.resultInlineLimitBytes !== undefined ? { resultInlineLimitBytes: options.resultInlineLimitBytes } : {}),
      ...(options.runLogLevel !== undefined ? { runLogLevel: options.runLogLevel } : {}),
    });
  } catch (err) {
    await probes?.close();
    throw err;
  }
  const srv = server;
  metrics.setReady(true);
  logger.info({ workerId: srv.workerId, tasks: srv.tasks, concurrency, port: probes?.port ?? null }, "worker ready");

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      metrics.setReady(false);
      await srv.stop();
      await probes?.close();
    })();
    return stopping;
  };
  const closed = srv.closed.then(() => stop());
  return { server: srv, tasks: srv.tasks, port: probes?.port ?? null, registry: metrics.registry, stop, closed };
}
