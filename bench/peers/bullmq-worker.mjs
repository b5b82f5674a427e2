// @ts-check
/**
 * The BullMQ peer's worker process: one BullMQ `Worker` on the bench's work
 * queue whose processor does nothing, the counterpart of an `offload-worker`
 * serving a no-op task. Plain ESM run with plain `node` (no tsx), so its memory
 * compares fairly with Offload's compiled worker.
 *
 * Env: BENCH_REDIS_URL (redis://host:port), BENCH_QUEUE (the queue to consume),
 * BENCH_CONCURRENCY (jobs in flight). Prints `ready` once the worker is
 * connected and consuming; on SIGTERM/SIGINT closes the worker (waits for jobs
 * in flight) and exits 0.
 */
import { Worker } from "bullmq";

/** @param {string} name */
function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`bullmq-worker: ${name} is not set`);
  return v;
}

const url = new URL(required("BENCH_REDIS_URL"));
const queue = required("BENCH_QUEUE");
const concurrency = Number(required("BENCH_CONCURRENCY"));
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`bullmq-worker: BENCH_CONCURRENCY must be a positive integer, not ${process.env.BENCH_CONCURRENCY}`);

/** @type {import("bullmq").ConnectionOptions} */
const connection = { host: url.hostname, port: Number(url.port || 6379) };

/** @type {Worker<{ i: number }, null>} */
const worker = new Worker(queue, async () => null, { connection, concurrency });
worker.on("error", (err) => console.error(`bullmq-worker: ${err.stack ?? String(err)}`));
worker.on("failed", (job, err) => console.error(`bullmq-worker: job ${job?.id ?? "?"} failed: ${err.message}`));

/** @type {Promise<void> | undefined} */
let closing;
/** @param {NodeJS.Signals} signal */
function shutdown(signal) {
  closing ??= worker.close().then(
    () => process.exit(0),
    (err) => {
      console.error(`bullmq-worker: close on ${signal} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}
process.once("SIGTERM", () => shutdown("SIGTERM"));
process.once("SIGINT", () => shutdown("SIGINT"));

try {
  await worker.waitUntilReady();
  process.stdout.write("ready\n");
} catch (err) {
  console.error(`bullmq-worker: could not start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}
