/**
 * The floor: a raw JetStream publish → pull → ack loop, with no API and no
 * database. Same nats-server, same stream settings as Offload's task stream,
 * same kind of durable pull consumer; the workers (`bench/peers/jetstream-worker.mjs`)
 * ack each message at once and report it done on a core NATS subject.
 * Whatever Offload spends above this is Offload's own work.
 */
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { DEFAULT_ACK_WAIT_SECONDS, DEFAULT_MAX_DELIVER, STREAM_CONFIGS, TASK_MAX_ACK_PENDING, taskConsumerConfig } from "@offload/sdk/internal";
import { startNats, type Child, type NatsServer } from "../../test/support/index.js";
import { startWorkerProcesses, usageOf } from "./processes.js";
import type { Lane, RunTimes, StartSystem, SystemUnderTest } from "./system.js";

const STREAM = "BENCH_FLOOR";
const CONSUMER = "bench-floor-work";
const subjectOf = (lane: Lane): string => `floor.${lane}`;
/** Core NATS subject of the workers' done notices: JSON arrays of `{ id, startedAt, completedAt }`. */
const DONE_SUBJECT = "floor.done";
const WORKER_SCRIPT = fileURLToPath(new URL("../peers/jetstream-worker.mjs", import.meta.url));

interface Waiter {
  /** Ids not completed yet. */
  readonly left: Set<string>;
  /** Called with each id as it completes (and once `left` is empty, done). */
  onDone(): void;
  fail(err: Error): void;
}

export const startJetstream: StartSystem = async (o) => {
  let nats: NatsServer | undefined;
  let nc: NatsConnection | undefined;
  let sub: Subscription | undefined;
  let workers: Child[] = [];
  let stopping: Promise<void> | undefined;
  const completed = new Map<string, RunTimes>();
  const waiters = new Set<Waiter>();

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const w of waiters) w.fail(new Error("the jetstream system was stopped"));
      const codes = await Promise.all(workers.map((w) => w.stop(5000)));
      codes.forEach((code, i) => {
        const w = workers[i];
        if (code !== 0 && w) o.log(`${w.name} exited with ${code}:\n${w.output().slice(-2000)}`);
      });
      sub?.unsubscribe();
      if (nc && !nc.isClosed()) await nc.drain().catch((err: unknown) => o.log(`jetstream: draining the bench connection failed: ${String(err)}`));
      await nats?.stop();
    })());

  const onNotice = (data: string): void => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      o.log(`jetstream: a done notice that is not JSON: ${data.slice(0, 200)}`);
      return;
    }
    for (const d of Array.isArray(parsed) ? parsed : [parsed]) {
      if (!isDone(d)) {
        o.log(`jetstream: a malformed done notice: ${JSON.stringify(d).slice(0, 200)}`);
        continue;
      }
      // A redelivery would report an id again: its first completion counts.
      if (completed.has(d.id)) continue;
      completed.set(d.id, { startedAt: d.startedAt, completedAt: d.completedAt });
      for (const w of waiters) if (w.left.delete(d.id)) w.onDone();
    }
  };

  let js: JetStreamClient;
  let description: string;
  try {
    nats = await startNats();
    nc = await connect({ servers: nats.url, name: "bench-jetstream" });
    const jsm = await jetstreamManager(nc);
    // Offload's task stream as it is (file storage, work-queue retention, duplicate window), on our own subjects.
    const tasks = STREAM_CONFIGS.tasks;
    await jsm.streams.add({ ...tasks, name: STREAM, subjects: [subjectOf("work"), subjectOf("idle")] });
    // Offload's own task consumer, with its default settings, on our own name and subject.
    const settings = { ackWaitSeconds: DEFAULT_ACK_WAIT_SECONDS, maxAckPending: Math.max(TASK_MAX_ACK_PENDING, o.workers * o.concurrency), maxDeliver: DEFAULT_MAX_DELIVER };
    await jsm.consumers.add(STREAM, { ...taskConsumerConfig("floor", settings), durable_name: CONSUMER, filter_subject: subjectOf("work") });
    js = jetstream(nc);
    // Before any submit, so that no notice can be missed.
    sub = nc.subscribe(DONE_SUBJECT, { callback: (err, msg) => (err ? o.log(`jetstream: done subscription: ${err.message}`) : onNotice(msg.string())) });
    await nc.flush();
    const version = nc.info?.version ?? "unknown";
    description = `raw JetStream publish→pull→ack, nats-server v${version}, ${tasks.storage} storage`;
    workers = await startWorkerProcesses("jetstream-worker", WORKER_SCRIPT, o.workers, {
      BENCH_NATS_URL: nats.url,
      BENCH_STREAM: STREAM,
      BENCH_CONSUMER: CONSUMER,
      BENCH_CONCURRENCY: String(o.concurrency),
    });
    for (const w of workers) {
      void w.exited.then((code) => {
        if (stopping) return;
        const err = new Error(`${w.name} exited (${code}) while the bench ran:\n${w.output().slice(-2000)}`);
        for (const waiter of waiters) waiter.fail(err);
      });
    }
  } catch (err) {
    await stop();
    throw new Error(`jetstream: could not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  // Unique within this system, even if a workload submits the same `i` twice:
  // an id is also the message id, and JetStream would drop a repeat as a duplicate.
  let seq = 0;
  const newId = (lane: Lane, i: number): string => `${lane}-${i}-${(seq++).toString(36)}`;
  const publish = async (lane: Lane, i: number): Promise<string> => {
    const id = newId(lane, i);
    // A message id as Offload's dispatch sets one, so the server does the same duplicate tracking.
    const ack = await js.publish(subjectOf(lane), JSON.stringify({ id, i }), { msgID: id });
    if (ack.duplicate) throw new Error(`jetstream: ${id} was taken for a duplicate`);
    return id;
  };

  const sut: SystemUnderTest = {
    name: "jetstream",
    description,
    submitOne: (lane, i) => publish(lane, i),
    submitBatch: (lane, from, n) => Promise.all(Array.from({ length: n }, (_, k) => publish(lane, from + k))),
    awaitCompleted(ids, { timeoutMs, onProgress }) {
      const left = new Set(ids.filter((id) => !completed.has(id)));
      const collect = (): Map<string, RunTimes> => {
        const out = new Map<string, RunTimes>();
        for (const id of ids) {
          const t = completed.get(id);
          if (t) out.set(id, t);
        }
        return out;
      };
      if (left.size === 0) return Promise.resolve(collect());
      if (stopping) return Promise.reject(new Error("the jetstream system was stopped"));
      return new Promise((resolve, reject) => {
        const total = new Set(ids).size;
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          clearInterval(progress);
          waiters.delete(waiter);
          if (err) reject(err);
          else resolve(collect());
        };
        const waiter: Waiter = {
          left,
          onDone: () => {
            if (left.size === 0) finish();
          },
          fail: (err) => finish(new Error(`${err.message} (${total - left.size} of ${total} runs had completed)`)),
        };
        const timer = setTimeout(() => finish(new Error(`jetstream: ${total - left.size} of ${total} runs completed in ${timeoutMs} ms`)), timeoutMs);
        const progress = setInterval(() => onProgress(total - left.size), 1000);
        waiters.add(waiter);
      });
    },
    processes: () => usageOf({ "nats-server": nats?.child }, workers),
    stop,
  };
  return sut;
};

function isDone(d: unknown): d is { id: string; startedAt: number; completedAt: number } {
  if (typeof d !== "object" || d === null) return false;
  const r = d as Record<string, unknown>;
  return typeof r.id === "string" && typeof r.startedAt === "number" && typeof r.completedAt === "number";
}
