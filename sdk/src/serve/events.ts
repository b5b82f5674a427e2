/**
 * What a worker tells NATS about its runs. Events (RUNNING, COMPLETED, …) go
 * to JetStream and are retried, with a message id per run, try and type so
 * that a retried publish is stored once: the run API materializes run state
 * from them, and a run's message is acked only once its event is stored.
 * Log lines are core publishes instead: they only buffer, so logging never
 * waits on NATS, and a lost line must never fail a run.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Nats, type RunEvent, type RunLogLine, type RunProgress, type RunProgressMessage } from "../protocol/index.js";
import type { RunInfo } from "./index.js";
import { setTimeout as sleep } from "node:timers/promises";

const PUBLISH_TRIES = 4;

export class RunReporter {
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #workerId: string;

  constructor(nc: NatsConnection, js: JetStreamClient, workerId: string) {
    this.#nc = nc;
    this.#js = js;
    this.#workerId = workerId;
  }

  /** Publishes the run's event of `type`; throws once every try failed (or the connection closed). */
  async publish(info: RunInfo, type: RunEvent["type"], fields: Partial<RunEvent>): Promise<void> {
    const event: RunEvent = { ...fields, runId: info.runId, task: info.task, type, attempt: info.attempt, workerId: this.#workerId, at: fields.at ?? new Date().toISOString() };
    const payload = JSON.stringify(event);
    const msgID = `${info.runId}:${info.attempt}:${type}`;
    for (let i = 1; ; i++) {
      try {
        await this.#js.publish(Nats.eventSubject(info.task), payload, { msgID, timeout: 5000 });
        return;
      } catch (err) {
        if (i >= PUBLISH_TRIES || this.#nc.isClosed()) throw err;
        await sleep(250 * 2 ** i);
      }
    }
  }

  /**
   * Publishes a progress report, once: a lost one is replaced by the next (the
   * caller coalesces them, and waits for this before publishing the outcome, so
   * that the last report is stored first on the same subject).
   */
  async publishProgress(info: RunInfo, progress: RunProgress): Promise<void> {
    const msg: RunProgressMessage = { runId: info.runId, task: info.task, type: "PROGRESS", attempt: info.attempt, workerId: this.#workerId, progress };
    await this.#js.publish(Nats.eventSubject(info.task), JSON.stringify(msg), { timeout: 5000 });
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
}
