/**
 * A worker's heartbeats: every few seconds, one core message per task it
 * serves, saying how many of that task's runs it has in flight and at most
 * how many it could run. They are how the run API knows which workers serve
 * a task and how loaded they are; a lost one is made up for by the next, so
 * they are core publishes, never retried.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { Nats, type Heartbeat } from "../protocol/index.js";

const HEARTBEAT_MS = 5_000;

export interface HeartbeatDeps {
  readonly nc: NatsConnection;
  readonly workerId: string;
  readonly concurrency: number;
  readonly tasks: readonly string[];
  readonly log: Logger;
  /** Runs of `task` in flight now. */
  inFlight(task: string): number;
}

/** Sends heartbeats now and then every few seconds, until the returned function is called. */
export function startHeartbeats(deps: HeartbeatDeps): () => void {
  sendHeartbeats(deps);
  const timer = setInterval(() => sendHeartbeats(deps), HEARTBEAT_MS);
  return () => clearInterval(timer);
}

function sendHeartbeats({ nc, workerId, concurrency, tasks, log, inFlight }: HeartbeatDeps): void {
  if (nc.isClosed() || nc.isDraining()) return;
  for (const task of tasks) {
    const hb: Heartbeat = { workerId, task, concurrency, inFlight: inFlight(task), at: new Date().toISOString() };
    try {
      nc.publish(Nats.heartbeatSubject(task), JSON.stringify(hb));
    } catch (err) {
      log.debug({ err }, "heartbeat not sent");
    }
  }
}
