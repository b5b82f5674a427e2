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
/**
 * How often the in-flight counts are compared with the last ones sent: a
 * change is announced within this time rather than at the next heartbeat, so
 * that the controller's scale-down ranks pods by what they run now (a pod
 * that just took a run must not look idle for 5 s). It also bounds the extra
 * messages of a busy worker to a few per second per task.
 */
const CHANGE_CHECK_MS = 200;

export interface HeartbeatDeps {
  readonly nc: NatsConnection;
  readonly workerId: string;
  readonly concurrency: number;
  readonly tasks: readonly string[];
  readonly log: Logger;
  /** Runs of `task` in flight now. */
  inFlight(task: string): number;
}

/**
 * Sends heartbeats now and then every few seconds, and one for a task as soon
 * as its in-flight count changed; until the returned function is called.
 */
export function startHeartbeats(deps: HeartbeatDeps): () => void {
  const sent = new Map<string, number>();
  sendHeartbeats(deps, deps.tasks, sent);
  const timer = setInterval(() => sendHeartbeats(deps, deps.tasks, sent), HEARTBEAT_MS);
  const check = setInterval(() => {
    const changed = deps.tasks.filter((t) => sent.get(t) !== deps.inFlight(t));
    if (changed.length) sendHeartbeats(deps, changed, sent);
  }, CHANGE_CHECK_MS);
  return () => {
    clearInterval(timer);
    clearInterval(check);
  };
}

function sendHeartbeats({ nc, workerId, concurrency, log, inFlight }: HeartbeatDeps, tasks: readonly string[], sent: Map<string, number>): void {
  if (nc.isClosed() || nc.isDraining()) return;
  for (const task of tasks) {
    const hb: Heartbeat = { workerId, task, concurrency, inFlight: inFlight(task), at: new Date().toISOString() };
    sent.set(task, hb.inFlight);
    try {
      nc.publish(Nats.heartbeatSubject(task), JSON.stringify(hb));
    } catch (err) {
      log.debug({ err }, "heartbeat not sent");
    }
  }
}
