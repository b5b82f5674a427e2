/**
 * What a worker tells NATS about its runs. Events (RUNNING, COMPLETED, …) and
 * progress reports go to JetStream and are retried, with a message id so that
 * a retried publish is stored once: the run API materializes run state from
 * them, and a run's message is acked only once its event is stored. With
 * batching on (the default), the entries of one task that are ready at the
 * same time travel as one `RunEventBatch` message ({@link EventBatcher}).
 * Log lines are core publishes instead: they only buffer, so logging never
 * waits on NATS, and a lost line must never fail a run.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Nats, type RunEvent, type RunLogLine, type RunProgress, type RunProgressMessage } from "../protocol/index.js";
import type { RunInfo } from "./index.js";
import { setTimeout as sleep } from "node:timers/promises";
import { EventBatcher, type Outgoing } from "./event-batches.js";
import type { JetStreamPublisher } from "../nats/publisher.js";

/**
 * How long an event's publish is tried for. A publish made while the connection is down fails at once (see
 * {@link JetStreamPublisher}), so tries are bounded by time, not count: the event rides out a NATS restart
 * or a reconnect of up to this long before its run is released for redelivery.
 */
const PUBLISH_DEADLINE_MS = 30_000;
/** The pause between tries doubles from this up to {@link MAX_RETRY_PAUSE_MS}. */
const FIRST_RETRY_PAUSE_MS = 250;
const MAX_RETRY_PAUSE_MS = 2000;
/** How long JetStream may take to confirm an event's publish (give the {@link JetStreamPublisher} this). */
export const EVENT_PUBLISH_TIMEOUT_MS = 5000;
/** nats-server's default max_payload, for a connection that has not said its own. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left in a batch message for its headers (the message id and JetStream's own). */
const HEADER_ROOM = 1024;

export class RunReporter {
  readonly #nc: NatsConnection;
  readonly #publisher: Pick<JetStreamPublisher, "publish">;
  readonly #workerId: string;
  /** One coalescer per task subject; none when batching is off. */
  readonly #batchers: Map<string, EventBatcher> | undefined;
  #batchSeq = 0;

  /** `publisher` confirms publishes for a fraction of what `js.publish()` costs per message (no timer, nor Error, per request). */
  constructor(nc: NatsConnection, publisher: Pick<JetStreamPublisher, "publish">, workerId: string, { batch = true }: { batch?: boolean } = {}) {
    this.#nc = nc;
    this.#publisher = publisher;
    this.#workerId = workerId;
    this.#batchers = batch ? new Map() : undefined;
  }

  /** Publishes the run's event of `type`; throws once every try failed (or the connection closed). */
  publish(info: RunInfo, type: RunEvent["type"], fields: Partial<RunEvent>): Promise<void> {
    const event: RunEvent = { ...fields, runId: info.runId, task: info.task, type, attempt: info.attempt, workerId: this.#workerId, at: fields.at ?? new Date().toISOString() };
    return this.#send(info.task, { json: JSON.stringify(event), msgID: `${info.runId}:${info.attempt}:${type}` });
  }

  /**
   * Publishes a progress report: a lost one is replaced by the next (the
   * caller coalesces them, and waits for this before publishing the outcome, so
   * that the last report is stored first on the same subject).
   */
  publishProgress(info: RunInfo, progress: RunProgress): Promise<void> {
    const msg: RunProgressMessage = { runId: info.runId, task: info.task, type: "PROGRESS", attempt: info.attempt, workerId: this.#workerId, progress };
    return this.#send(info.task, { json: JSON.stringify(msg) });
  }

  /** Ships one of the run's log lines; the OFFLOAD_LOGS stream stores it, bounded per run. */
  logLine(runId: string, line: RunLogLine): void {
    if (this.#nc.isClosed()) return;
    try {
      this.#nc.publish(Nats.logSubject(runId), JSON.stringify(line));
    } catch {
      // A lost log line must never fail a run.
    }
  }

  #send(task: string, entry: Outgoing): Promise<void> {
    const subject = Nats.eventSubject(task);
    if (!this.#batchers) return this.#publish(subject, entry.json, entry.msgID);
    let batcher = this.#batchers.get(subject);
    if (!batcher) {
      batcher = new EventBatcher({
        single: (e) => this.#publish(subject, e.json, e.msgID),
        // One id per batch, kept across its tries, so that a retried batch is stored once.
        batch: (payload) => this.#publish(subject, payload, `${this.#workerId}:${++this.#batchSeq}`),
        maxBytes: () => (this.#nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - HEADER_ROOM,
      });
      this.#batchers.set(subject, batcher);
    }
    return batcher.send(entry);
  }

  async #publish(subject: string, payload: string, msgID: string | undefined): Promise<void> {
    const deadline = Date.now() + PUBLISH_DEADLINE_MS;
    for (let pause = FIRST_RETRY_PAUSE_MS; ; pause = Math.min(pause * 2, MAX_RETRY_PAUSE_MS)) {
      try {
        await this.#publisher.publish(subject, payload, msgID ? { msgID } : {});
        return;
      } catch (err) {
        if (Date.now() + pause >= deadline || this.#nc.isClosed()) throw err;
        await sleep(pause);
      }
    }
  }
}
