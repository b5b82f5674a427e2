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
import {
  ServeEnvSchema,
  UnreachableError,
  listenError,
  natsEndpoint,
  parseEnv,
  serve,
  startWaitSeconds,
  waitForEndpoints,
  type RunLogLevel,
  type Server,
  type Task,
} from "@offload/sdk/internal";
import { DEFAULT_WORKER_PORT } from "./config.js";
import { startProbeServer, type ProbeServer } from "./http.js";
import { loadTasks } from "./load.js";
import { createMetrics } from "./metrics.js";

export { loadConfig, WorkerEnvSchema, HELP, FLAGS, DEFAULT_WORKER_PORT } from "./config.js";
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
  /**
   * HTTP port of the probes and metrics; 0 picks a free one; null serves no HTTP. Undefined: 8081, or a free
   * port (with a warning naming it) when 8081 is taken, so a second worker on a developer's machine starts;
   * a port given explicitly must be free.
   */
  port?: number | null | undefined;
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
  /** Seconds to wait at start for NATS to accept connections. @defaultValue `OFFLOAD_START_WAIT_SECONDS`, else 30 */
  startWaitSeconds?: number;
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
 * consuming), waits up to `startWaitSeconds` for NATS to accept connections
 * and serves the tasks. Throws a `ConfigError` for a bad module, task name,
 * option or a port in use, and an `UnreachableError` (naming the URLs and
 * `OFFLOAD_NATS_URL`) when NATS did not answer in time.
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
      : await startProbes(options.host ?? "0.0.0.0", options.port, logger, (host, port) =>
          startProbeServer({ host, port, isReady: () => !draining && (server?.ready ?? false), registry: metrics.registry }),
        );
  try {
    await waitForNats(options, logger);
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

const PORT_SETTING = "OFFLOAD_WORKER_PORT / --port";

/** Listens for the probes; a port in use is a `ConfigError` naming the setting, except the default's, which gives way to a free port. */
async function startProbes(
  host: string,
  port: number | undefined,
  logger: Logger,
  listen: (host: string, port: number) => Promise<ProbeServer>,
): Promise<ProbeServer> {
  const attempt = async (p: number): Promise<ProbeServer> => {
    try {
      return await listen(host, p);
    } catch (err) {
      const config = listenError(err, { process: "offload-worker", host, port: p, portSetting: PORT_SETTING, hostSetting: "OFFLOAD_WORKER_HOST" });
      if (config) logger.fatal({ port: p, host }, config.message);
      throw config ?? err;
    }
  };
  if (port !== undefined) return attempt(port);
  try {
    return await listen(host, DEFAULT_WORKER_PORT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") return attempt(DEFAULT_WORKER_PORT);
    const probes = await attempt(0);
    logger.warn(
      { port: probes.port, defaultPort: DEFAULT_WORKER_PORT },
      `port ${DEFAULT_WORKER_PORT} is in use (another worker?); /healthz, /readyz and /metrics are on port ${probes.port} instead; set ${PORT_SETTING} to choose one`,
    );
    return probes;
  }
}

const NatsEnvSchema = ServeEnvSchema.pick({ OFFLOAD_NATS_URL: true }).extend({ OFFLOAD_START_WAIT_SECONDS: startWaitSeconds });

/**
 * Waits (bounded) until one of the NATS servers accepts a connection, with a
 * progress line every few seconds: a pod may start before NATS, but a wrong
 * URL must end with a message that names it, not with reconnects forever.
 */
async function waitForNats(options: WorkerOptions, logger: Logger): Promise<void> {
  const env = parseEnv(NatsEnvSchema, process.env, "offload-worker");
  const urls = options.natsUrl === undefined ? env.OFFLOAD_NATS_URL : typeof options.natsUrl === "string" ? options.natsUrl.split(",").map((u) => u.trim()) : options.natsUrl;
  const waitSeconds = options.startWaitSeconds ?? env.OFFLOAD_START_WAIT_SECONDS;
  const endpoints = urls.flatMap((u) => natsEndpoint(u) ?? []);
  if (!endpoints.length) return;
  const where = endpoints.map((e) => e.label).join(", ");
  const result = await waitForEndpoints(endpoints, {
    waitSeconds,
    onWaiting: ({ elapsedSeconds, reason }) =>
      logger.warn({ nats: where, elapsedSeconds, waitSeconds }, `waiting for NATS at ${where} (OFFLOAD_NATS_URL): ${reason}; giving up after ${waitSeconds} s`),
  });
  if (result.ok) return;
  const message =
    `offload-worker: cannot reach NATS at ${where} (OFFLOAD_NATS_URL / --nats-url) within ${waitSeconds} s (OFFLOAD_START_WAIT_SECONDS): ${result.reason}; ` +
    "start nats-server with JetStream (nats-server -js) there, or point OFFLOAD_NATS_URL at yours";
  logger.fatal({ nats: where, waitSeconds }, message);
  throw new UnreachableError(message);
}
