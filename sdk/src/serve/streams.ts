import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type ConsumerConfig, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { Nats } from "../protocol/index.js";

/** Most unacked messages of a task across every process serving it. */
export const TASK_MAX_ACK_PENDING = 10_000;

/** Settings of the durable pull consumer every process serving a task shares. */
export interface TaskConsumerSettings {
  /** Seconds a delivered message may stay unacked before JetStream redelivers it. */
  ackWaitSeconds: number;
  /** Most unacked messages across every process serving the task. */
  maxAckPending: number;
  /**
   * Most deliveries of one message (a run's dispatch) before JetStream gives
   * up on it and sends a max-deliveries advisory, which the run API turns into
   * `FAILED` (`MaxDeliveriesExceeded`). Bounds a poison message that kills
   * every worker taking it. -1: no limit.
   */
  maxDeliver: number;
}

/** The config of the shared durable consumer of `task`. */
export function taskConsumerConfig(task: string, settings: TaskConsumerSettings): Partial<ConsumerConfig> {
  return {
    durable_name: Nats.taskConsumer(task),
    filter_subject: Nats.taskSubject(task),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(settings.ackWaitSeconds * 1000),
    max_deliver: settings.maxDeliver,
    max_ack_pending: settings.maxAckPending,
  };
}

/**
 * Adds the shared durable consumer of `task`, or updates the settings that may
 * change (ack wait, max ack pending, max deliver) of one that exists. Races between
 * processes starting together are tolerated: the last update wins.
 */
export async function ensureTaskConsumer(jsm: JetStreamManager, task: string, settings: TaskConsumerSettings): Promise<void> {
  const cfg = taskConsumerConfig(task, settings);
  const durable = Nats.taskConsumer(task);
  let exists = true;
  try {
    await jsm.consumers.info(Nats.tasksStream, durable);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
    exists = false;
  }
  if (!exists) {
    try {
      await jsm.consumers.add(Nats.tasksStream, cfg);
      return;
    } catch (err) {
      // Created by another process meanwhile (with a different ack wait): fall through to update.
      if (!(err instanceof JetStreamApiError)) throw err;
    }
  }
  await jsm.consumers.update(Nats.tasksStream, durable, {
    ack_wait: cfg.ack_wait,
    max_ack_pending: cfg.max_ack_pending,
    max_deliver: cfg.max_deliver,
  });
}
