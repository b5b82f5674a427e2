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
import { Nats } from "@offload/sdk/internal";
import type { Logger } from "pino";

/**
 * The two streams of the NATS layout, as the run API creates them. Workers
 * ensure the same streams with the same settings (sdk/src/serve/streams.ts);
 * whichever process starts first creates them.
 */
export const STREAMS = {
  /** One message per dispatch of a run, removed once a worker acks it; a double publish within 2 minutes is dropped by its message id. */
  tasks: {
    name: Nats.tasksStream,
    subjects: [Nats.tasksWildcard],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(2 * 60 * 1000),
  },
  /** What workers report about runs; materialized by the run API, and aged out after a day. */
  events: {
    name: Nats.eventsStream,
    subjects: [Nats.eventsWildcard],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(24 * 60 * 60 * 1000),
  },
} as const satisfies Record<string, Partial<StreamConfig> & { name: string }>;

/** The durable consumer every run API replica shares to materialize events. */
export const EVENTS_CONSUMER: Partial<ConsumerConfig> & { durable_name: string } = {
  durable_name: Nats.eventsConsumer,
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  ack_wait: nanos(30_000),
  max_deliver: -1,
  max_ack_pending: 10_000,
};

// JetStream's "stream name already in use": another process created it between our info and add.
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates the streams and the events consumer if missing. Safe when several
 * replicas (and workers) start at once: losing the race to create is fine, and
 * an existing stream or consumer is accepted as it is (its owner may have tuned it).
 */
export async function ensureStreams(jsm: JetStreamManager, log: Logger): Promise<void> {
  for (const cfg of Object.values(STREAMS)) {
    try {
      await jsm.streams.info(cfg.name);
      continue;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    }
    try {
      await jsm.streams.add({ ...cfg, subjects: [...cfg.subjects] });
      log.info({ stream: cfg.name }, "created stream");
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    }
  }
  try {
    await jsm.consumers.info(Nats.eventsStream, EVENTS_CONSUMER.durable_name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
  }
  try {
    await jsm.consumers.add(Nats.eventsStream, EVENTS_CONSUMER);
  } catch (err) {
    // Another replica created it meanwhile: theirs is as good as ours.
    if (!(err instanceof JetStreamApiError)) throw err;
    await jsm.consumers.info(Nats.eventsStream, EVENTS_CONSUMER.durable_name);
  }
}
