// @ts-check
/**
 * A worker of the floor (`bench/systems/jetstream.ts`): the JetStream part of
 * what an Offload worker does with a run, and nothing else. It binds to the
 * durable pull consumer the bench created, and for each message: stamps
 * `startedAt`, does no work, acks, stamps `completedAt`, and tells the bench
 * on the core subject `floor.done`. No API, no database, no events stream.
 *
 * Plain ESM JavaScript run with plain `node` (as Offload's compiled worker
 * is), so its memory compares fairly.
 *
 * Env: BENCH_NATS_URL, BENCH_STREAM, BENCH_CONSUMER, BENCH_CONCURRENCY (most
 * messages buffered at once), BENCH_WORKER_INDEX (optional, for names).
 * Prints `ready` once consuming; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import { performance } from "node:perf_hooks";
import { setImmediate } from "node:timers";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

/** Core NATS subject of the done notices: a JSON array of {@link Done}. */
const DONE_SUBJECT = "floor.done";

/** @typedef {{ id: string, startedAt: number, completedAt: number }} Done */
/** @typedef {import("@nats-io/transport-node").NatsConnection} NatsConnection */
/** @typedef {import("@nats-io/jetstream").ConsumerMessages} ConsumerMessages */
/** @typedef {import("@nats-io/jetstream").JsMsg} JsMsg */

/** Same clock as `bench/clock.ts` (`nowMs()`): ms since the epoch, sub-ms resolution. */
const nowMs = () => performance.timeOrigin + performance.now();

/**
 * @param {string} name
 * @returns {string}
 */
function need(name) {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is not set`);
  return v;
}

/**
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

const workerName = `jetstream-worker#${process.env.BENCH_WORKER_INDEX ?? "0"}`;

/** @type {NatsConnection | undefined} */
let nc;
/** @type {ConsumerMessages | undefined} */
let messages;
let stopping = false;

/** Done notices not yet published; flushed once per turn of the event loop, so a burst of acks costs one publish. */
/** @type {Done[]} */
let unsent = [];
let flushQueued = false;

function flush() {
  flushQueued = false;
  if (unsent.length === 0 || !nc || nc.isClosed()) return;
  nc.publish(DONE_SUBJECT, JSON.stringify(unsent));
  unsent = [];
}

/** @param {JsMsg} msg */
function onMessage(msg) {
  const startedAt = nowMs();
  // No work: the floor is the ack itself.
  msg.ack();
  const completedAt = nowMs();
  try {
    /** @type {{ id: unknown }} */
    const payload = msg.json();
    if (typeof payload.id !== "string") throw new Error(`no string id in payload ${msg.string()}`);
    unsent.push({ id: payload.id, startedAt, completedAt });
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  } catch (err) {
    console.error(`${workerName}: bad message on ${msg.subject}: ${describe(err)}`);
  }
}

/**
 * Stops consuming, publishes the notices not yet sent, drains the connection, exits.
 * @param {string} why
 */
async function shutdown(why) {
  if (stopping) return;
  stopping = true;
  try {
    await messages?.close();
    flush();
    if (nc && !nc.isClosed()) await nc.drain();
    process.exit(0);
  } catch (err) {
    console.error(`${workerName}: stopping on ${why} failed: ${describe(err)}`);
    process.exit(1);
  }
}

process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));

// Notifications that mean the floor is not measuring what it should.
const TROUBLE = new Set(["heartbeats_missed", "consumer_not_found", "stream_not_found", "consumer_deleted", "exceeded_limits", "no_responders"]);

async function main() {
  const concurrency = Number(need("BENCH_CONCURRENCY"));
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`BENCH_CONCURRENCY must be a positive integer, not ${process.env.BENCH_CONCURRENCY}`);
  const stream = need("BENCH_STREAM");
  const consumerName = need("BENCH_CONSUMER");
  nc = await connect({ servers: need("BENCH_NATS_URL"), name: workerName });
  const consumer = await jetstream(nc).consumers.get(stream, consumerName);
  if (stopping) return;
  messages = await consumer.consume({ max_messages: concurrency, callback: onMessage });
  void messages.closed().then((err) => {
    if (err && !stopping) {
      console.error(`${workerName}: consuming stopped: ${describe(err)}`);
      process.exit(1);
    }
  });
  void (async () => {
    for await (const s of messages.status()) {
      if (TROUBLE.has(s.type)) console.error(`${workerName}: ${JSON.stringify(s)}`);
    }
  })();
  void nc.closed().then((err) => {
    if (!stopping) {
      console.error(`${workerName}: connection closed${err ? `: ${describe(err)}` : ""}`);
      process.exit(1);
    }
  });
  process.stdout.write("ready\n");
}

main().catch((err) => {
  console.error(`${workerName}: ${describe(err)}`);
  process.exit(1);
});
