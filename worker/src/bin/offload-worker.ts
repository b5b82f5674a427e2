#!/usr/bin/env node
// offload-worker: serves the tasks of a module. See `offload-worker --help`.
import { pino } from "pino";
import { isOffloadError } from "@offload/sdk/internal";
import { HELP, loadConfig, runWorker, type Command } from "../index.js";

async function main(): Promise<void> {
  let command: Command;
  try {
    command = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    return fail(err);
  }
  if (command.help) {
    process.stdout.write(HELP);
    return;
  }
  const c = command.config;
  const logger = pino({ name: "offload-worker", level: c.OFFLOAD_LOG_LEVEL });
  // Task code can throw outside its promise (a timer callback); the runs in flight are redelivered.
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception; exiting (runs in flight will be redelivered)");
    process.exit(1);
  });

  let worker;
  try {
    worker = await runWorker({
      module: c.OFFLOAD_MODULE,
      ...(c.OFFLOAD_TASKS ? { taskNames: c.OFFLOAD_TASKS } : {}),
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
    process.exit(1);
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, "second signal: exiting now; runs in flight will be redelivered");
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal, inFlight: worker.server.inFlight }, "draining");
    void worker.stop().then(() => {
      logger.info("worker stopped");
      process.exit(0);
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  void worker.closed.then(() => {
    if (signalled) return;
    logger.fatal("NATS connection closed for good; exiting");
    process.exit(1);
  });
}

function fail(err: unknown): void {
  process.stderr.write(`${(err as Error)?.message ?? String(err)}\nRun offload-worker --help for usage.\n`);
  process.exit(2);
}

void main();
