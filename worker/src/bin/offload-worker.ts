#!/usr/bin/env node
// offload-worker: serves the tasks of a module. See `offload-worker --help`.
import { pino, type Logger } from "pino";
import { isOffloadError, startTracing, type Tracing } from "@offload/sdk/internal";
import { HELP, loadConfig, runWorker, type Command, type WorkerConfig } from "../index.js";
import { findModule, loadTasks } from "../load.js";
import { WATCH_CHILD_ENV, WATCH_HELP, reportImport, superviseWatch, takeWatchFlag } from "../watch.js";

async function main(): Promise<void> {
  const { watch, args } = takeWatchFlag(process.argv.slice(2));
  let command: Command;
  try {
    command = loadConfig(args, process.env);
  } catch (err) {
    return fail(err);
  }
  if (command.help) {
    process.stdout.write(HELP + WATCH_HELP);
    return;
  }
  const c = command.config;
  const logger = pino({ name: "offload-worker", level: c.OFFLOAD_LOG_LEVEL });
  if (watch) return supervise(args, c, logger);
  // Under --watch: the supervisor is the parent, listening on the IPC channel.
  const watchChild = process.env[WATCH_CHILD_ENV] === "1" && process.send !== undefined;

  // Before the tasks load, so that their spans have a provider from the first run (only if OTEL_* asks for it).
  let tracing: Tracing | undefined;
  try {
    tracing = await startTracing("offload-worker", logger);
  } catch (err) {
    // Traces are a window, not the work: a worker that cannot export them still runs its tasks.
    logger.error({ err }, "could not set up trace export (OTEL_* variables); running without it");
  }

  // Task code can throw outside its promise (a timer callback); the runs in flight are redelivered.
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception; exiting (runs in flight will be redelivered)");
    process.exit(1);
  });

  let worker;
  try {
    const tasks = await loadTasks(c.OFFLOAD_MODULE, c.OFFLOAD_TASKS, process.cwd(), watchChild ? { onImport: reportImport } : {});
    worker = await runWorker({
      tasks,
      concurrency: c.OFFLOAD_CONCURRENCY,
      drainSeconds: c.OFFLOAD_DRAIN_SECONDS,
      port: c.OFFLOAD_WORKER_PORT,
      host: c.OFFLOAD_WORKER_HOST,
      natsUrl: c.OFFLOAD_NATS_URL,
      ackWaitSeconds: c.OFFLOAD_ACK_WAIT_SECONDS,
      logger,
      ...(c.OFFLOAD_WORKER_ID ? { workerId: c.OFFLOAD_WORKER_ID } : {}),
      maxDeliver: c.OFFLOAD_MAX_DELIVER,
      resultInlineLimitBytes: c.OFFLOAD_RESULT_INLINE_LIMIT,
      runLogLevel: c.OFFLOAD_RUN_LOG_LEVEL,
    });
  } catch (err) {
    if (isOffloadError(err) && err.code === "OFFLOAD_CONFIG") return fail(err);
    logger.fatal({ err }, "worker failed to start");
    // NATS not reachable within the start-up wait: runWorker logged the line; the person at the terminal gets it too.
    if (isOffloadError(err) && err.code === "OFFLOAD_UNREACHABLE") process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals | "supervisor gone"): void => {
    if (signalled) {
      logger.warn({ signal }, "second signal: exiting now; runs in flight will be redelivered");
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal, inFlight: worker.server.inFlight }, "draining");
    void worker
      .stop()
      .then(() => tracing?.shutdown())
      .then(() => {
        logger.info("worker stopped");
        process.exit(0);
      });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // A supervisor killed outright leaves no orphan: the worker drains and exits as on SIGTERM.
  if (watchChild) process.once("disconnect", () => signalled || onSignal("supervisor gone"));
  void worker.closed.then(() => {
    if (signalled) return;
    logger.fatal("NATS connection closed for good; exiting");
    process.exit(1);
  });
}

/** `--watch`: runs the worker as a child and restarts it after each change; exits with the last child's code. */
async function supervise(args: readonly string[], c: WorkerConfig, logger: Logger): Promise<void> {
  let module: string;
  try {
    module = await findModule(c.OFFLOAD_MODULE);
  } catch (err) {
    return fail(err);
  }
  const supervisor = superviseWatch({ args, module, logger });
  let signals = 0;
  // The first signal drains the worker; a second one stops it at once, as without --watch.
  const onSignal = (): void => void supervisor.stop(signals++ > 0);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.exit(await supervisor.done);
}

function fail(err: unknown): void {
  process.stderr.write(`${(err as Error)?.message ?? String(err)}\nRun offload-worker --help for usage.\n`);
  process.exit(2);
}

void main();
