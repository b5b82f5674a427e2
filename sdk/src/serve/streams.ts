import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { Nats } from "../protocol/index.js";

/**
 * The two streams of the NATS layout. Workers and the run API both ensure
 * them at start with this exact config, so whichever comes first creates them.
 */
export const STREAM_CONFIGS = {
  /** One message per dispatch of a run; removed once a worker acks it. */
  tasks: {
    name: Nats.tasksStream,
    subjects: [Nats.tasksWildcard],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60 * 1000),
  },
  /** What workers report about runs; the run API materializes it, and it ages out after a day. */
  events: {
    name: Nats.eventsStream,
    subjects: [Nats.eventsWildcard],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(24 * 60 * 60 * 1000),
  },
} as const satisfies Record<string, Partial<StreamConfig> & { name: string }>;

// JetStream's "stream name already in use" (another process created it between our info and add).
const STREAM_NAME_IN_USE = 10058;

/** Creates `OFFLOAD_TASKS` and `OFFLOAD_EVENTS` if they are missing. Safe to race with other processes doing the same. */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const cfg of Object.values(STREAM_CONFIGS)) {
    try {
      await jsm.streams.info(cfg.name);
      continue;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    }
    try {
      await jsm.streams.add({ ...cfg });
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    }
  }
}

/** Settings of the durable pull consumer every process serving a task shares. */
export interface TaskConsumerSettings {
  /** Seconds a delivered message may stay unacked before JetStream redelivers it. */
  ackWaitSeconds: number;
  /** Most unacked messages across every process serving the task. */
  maxAckPending: number;
}

/** The config of the shared durable consumer of `task`. */
export function taskConsumerConfig(task: string, settings: TaskConsumerSettings): Partial<ConsumerConfig> {
  return {
    durable_name: Nats.taskConsumer(task),
    filter_subject: Nats.taskSubject(task),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(settings.ackWaitSeconds * 1000),
    max_deliver: -1,
    max_ack_pending: settings.maxAckPending,
  };
}

/**
 * Adds the shared durable consumer of `task`, or updates the settings that may
 * change (ack wait, max ack pending) of one that exists. Races between
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
