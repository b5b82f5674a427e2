import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { startRedis, type Child, type RedisServer } from "../../test/support/index.js";
import { startWorkerProcesses, usageOf } from "./processes.js";
import type { Lane, RunTimes, StartSystem, SystemUnderTest } from "./system.js";

/**
 * BullMQ, the peer: a Debian redis-server (AOF, fsync every second, noeviction),
 * one BullMQ `Queue` per lane, and `workers` processes of
 * `bench/peers/bullmq-worker.mjs`, each a BullMQ `Worker` on the `work` queue
 * with a no-op processor. Jobs use BullMQ's defaults (one attempt, kept once
 * completed), as `queue.add()` in an app would.
 */

const WORKER_SCRIPT = fileURLToPath(new URL("../peers/bullmq-worker.mjs", import.meta.url));
const QUEUE_NAMES: Record<Lane, string> = { work: "bench-work", idle: "bench-idle" };
/** How often `awaitCompleted` counts the completed and failed sets (two ZCARDs). */
const POLL_MS = 50;
/** How often it checks exactly which of its ids completed (ZMSCORE of the ones left), and reports progress. */
const EXACT_MS = 1000;
/** Ids per ZMSCORE / per pipeline of reads or removals. */
const CHUNK = 5000;

interface NoopData {
  i: number;
}
type NoopQueue = Queue<NoopData, null, "noop">;

export const startBullmq: StartSystem = async (o) => {
  let redis: RedisServer | undefined;
  let probe: Redis | undefined;
  const queues: Partial<Record<Lane, NoopQueue>> = {};
  let workers: Child[] = [];
  let stopping: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Workers first (they finish jobs in flight), then the producer side, then the server.
      const codes = await Promise.all(workers.map((w) => w.stop(10_000)));
      codes.forEach((code, i) => {
        if (code !== 0) o.log(`bullmq: worker #${i} exited with ${code}:\n${workers[i]?.output().slice(-2000) ?? ""}`);
      });
      for (const q of Object.values(queues)) {
        await q.close().catch((err: unknown) => o.log(`bullmq: closing queue ${q.name}: ${String(err)}`));
      }
      if (probe && probe.status !== "end") await probe.quit().catch(() => probe?.disconnect());
      await redis?.stop();
    })());

  try {
    redis = await startRedis();
    const connection = { host: "127.0.0.1", port: redis.port };
    const work: NoopQueue = new Queue(QUEUE_NAMES.work, { connection });
    queues.work = work;
    const idle: NoopQueue = new Queue(QUEUE_NAMES.idle, { connection });
    queues.idle = idle;
    // A Queue emits "error" when its connection fails; unheard, that would kill the bench.
    for (const q of [work, idle]) q.on("error", (err: Error) => o.log(`bullmq: queue ${q.name}: ${err.message}`));
    await Promise.all([work.waitUntilReady(), idle.waitUntilReady()]);
    // The bench's own connection (the app's view): counts and reads for awaitCompleted.
    probe = new Redis(redis.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    probe.on("error", (err: Error) => o.log(`bullmq: bench connection: ${err.message}`));
    const client = probe;
    const description = `BullMQ ${await bullmqVersion()} on redis-server ${await redisVersion(client)} (AOF everysec)`;
    workers = await startWorkerProcesses("bullmq-worker", WORKER_SCRIPT, o.workers, {
      BENCH_REDIS_URL: redis.url,
      BENCH_QUEUE: QUEUE_NAMES.work,
      BENCH_CONCURRENCY: String(o.concurrency),
    });
    const server = redis;
    const lanes: Record<Lane, NoopQueue> = { work, idle };

    const system: SystemUnderTest = {
      name: "bullmq",
      description,
      async submitOne(lane, i) {
        const job = await lanes[lane].add("noop", { i });
        return jobId(job.id);
      },
      async submitBatch(lane, from, n) {
        const jobs = await lanes[lane].addBulk(Array.from({ length: n }, (_, k) => ({ name: "noop" as const, data: { i: from + k } })));
        return jobs.map((j) => jobId(j.id));
      },
      awaitCompleted: (ids, a) => awaitCompleted(work, client, workers, ids, a),
      processes: () => usageOf({ "redis-server": server.child }, workers),
      stop,
    };
    return system;
  } catch (err) {
    await stop();
    throw err;
  }
};

function jobId(id: string | undefined): string {
  if (id === undefined) throw new Error("bullmq: queue.add() returned a job without an id");
  return id;
}

async function bullmqVersion(): Promise<string> {
  const path = createRequire(import.meta.url).resolve("bullmq/package.json");
  const pkg: unknown = JSON.parse(await readFile(path, "utf8"));
  const v = typeof pkg === "object" && pkg !== null && "version" in pkg ? pkg.version : undefined;
  return typeof v === "string" ? v : "?";
}

/** The version of the server actually running (INFO), e.g. `7.0.15`. */
async function redisVersion(client: Redis): Promise<string> {
  const info = await client.info("server");
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? "?";
}

/**
 * Waits for `ids` with as little load as possible on redis and the workers:
 * every POLL_MS two ZCARDs (completed, failed), which say nothing about *which*
 * jobs finished, so the exact check (one MULTI of ZCARD + ZMSCORE of the ids not
 * yet seen completed) runs only when the count says all of ours may be done, and
 * at least every EXACT_MS as a safety net (and for progress). The exact check
 * also learns how many entries of the completed set are not ours (jobs of
 * earlier workloads, or of concurrent calls), which the count then subtracts.
 * A rise of the failed count triggers a ZMSCORE of our ids in the failed set.
 *
 * Then it reads `processedOn` and `finishedOn` of each job (stamped by the
 * worker, ms since the epoch; `finishedOn` in the same script that moves the job
 * to the completed set, i.e. when an app can see it), and only after that
 * removes those jobs, so redis holds one workload's jobs at a time and no other
 * call's timings are lost.
 */
async function awaitCompleted(
  queue: NoopQueue,
  client: Redis,
  workers: readonly Child[],
  ids: readonly string[],
  o: { timeoutMs: number; onProgress(completed: number): void },
): Promise<Map<string, RunTimes>> {
  const completedKey = queue.toKey("completed");
  const failedKey = queue.toKey("failed");
  const total = ids.length;
  const deadline = Date.now() + o.timeoutMs;
  let pending = [...ids];
  let others = 0;
  let lastExact = 0;
  let lastProgress = Date.now();
  let lastFailed = 0;

  /** Which of `pending` are completed now; drops them from `pending`. */
  const exact = async (): Promise<void> => {
    const m = client.multi().zcard(completedKey);
    for (let k = 0; k < pending.length; k += CHUNK) m.zmscore(completedKey, ...pending.slice(k, k + CHUNK));
    const res = results(await m.exec(), "ZCARD/ZMSCORE of the completed set");
    const card = Number(res[0]);
    const scores = res.slice(1).flatMap((r) => (Array.isArray(r) ? (r as unknown[]) : []));
    pending = pending.filter((_, k) => scores[k] === null || scores[k] === undefined);
    others = card - (total - pending.length);
    lastExact = Date.now();
  };
  const failIfOursFailed = async (): Promise<void> => {
    const m = client.multi();
    for (let k = 0; k < pending.length; k += CHUNK) m.zmscore(failedKey, ...pending.slice(k, k + CHUNK));
    const scores = results(await m.exec(), "ZMSCORE of the failed set").flatMap((r) => (Array.isArray(r) ? (r as unknown[]) : []));
    const k = scores.findIndex((s) => s !== null && s !== undefined);
    const id = k >= 0 ? pending[k] : undefined;
    if (id === undefined) return;
    const reason = await client.hget(queue.toKey(id), "failedReason");
    throw new Error(`bullmq: job ${id} failed: ${reason ?? "(no failedReason)"} (${total - pending.length} of ${total} completed)`);
  };

  await exact();
  while (pending.length > 0) {
    const dead = workers.find((w) => w.proc.exitCode !== null || w.proc.signalCode !== null);
    if (dead) throw new Error(`bullmq: ${dead.name} exited (${total - pending.length} of ${total} completed):\n${dead.output().slice(-2000)}`);
    if (Date.now() > deadline) {
      await exact();
      if (pending.length === 0) break;
      throw new Error(`bullmq: only ${total - pending.length} of ${total} jobs completed after ${o.timeoutMs} ms`);
    }
    await sleep(POLL_MS);
    const res = results(await client.multi().zcard(completedKey).zcard(failedKey).exec(), "ZCARD");
    const completed = Number(res[0]);
    const failed = Number(res[1]);
    if (failed > lastFailed) await failIfOursFailed();
    lastFailed = failed;
    if (completed - others >= total || Date.now() - lastExact >= EXACT_MS) await exact();
    if (Date.now() - lastProgress >= 1000) {
      o.onProgress(total - pending.length);
      lastProgress = Date.now();
    }
  }

  const times = await readTimes(queue, client, ids);
  await removeJobs(queue, ids);
  return times;
}

async function readTimes(queue: NoopQueue, client: Redis, ids: readonly string[]): Promise<Map<string, RunTimes>> {
  const out = new Map<string, RunTimes>();
  for (let k = 0; k < ids.length; k += CHUNK) {
    const chunk = ids.slice(k, k + CHUNK);
    const p = client.pipeline();
    for (const id of chunk) p.hmget(queue.toKey(id), "processedOn", "finishedOn");
    const res = results(await p.exec(), "HMGET processedOn finishedOn");
    chunk.forEach((id, j) => {
      const r = res[j];
      const [started, completed] = Array.isArray(r) ? r.map((v) => (typeof v === "string" ? Number(v) : Number.NaN)) : [];
      if (started === undefined || completed === undefined || !Number.isFinite(started) || !Number.isFinite(completed)) {
        throw new Error(`bullmq: job ${id} is completed but has no processedOn/finishedOn (${JSON.stringify(r)})`);
      }
      out.set(id, { startedAt: started, completedAt: completed });
    });
  }
  return out;
}

/** Removes the jobs (timings read) through BullMQ's own removeJob script, pipelined. */
async function removeJobs(queue: NoopQueue, ids: readonly string[]): Promise<void> {
  for (let k = 0; k < ids.length; k += CHUNK) await Promise.all(ids.slice(k, k + CHUNK).map((id) => queue.remove(id)));
}

/** The replies of a MULTI/pipeline, or a clear error if it was aborted or a command failed. */
function results(r: [Error | null, unknown][] | null, what: string): unknown[] {
  if (r === null) throw new Error(`bullmq: ${what}: transaction aborted`);
  return r.map(([err, v]) => {
    if (err) throw new Error(`bullmq: ${what}: ${err.message}`);
    return v;
  });
}
