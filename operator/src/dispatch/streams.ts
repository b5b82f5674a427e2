import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import { Objm, type ObjectStore, type ObjectStoreOptions } from "@nats-io/obj";
import { nanos } from "@nats-io/transport-node";
import { MAX_LOG_LINES_PER_RUN, Nats } from "@offload/sdk/internal";
import type { Logger } from "pino";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The streams of the NATS layout, as the run API creates them. Workers
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
    max_age: nanos(DAY_MS),
  },
  /**
   * Log lines of runs, one subject per run. The per-subject bound keeps one
   * chatty run from crowding out the others; a week is as long as anyone
   * looks at a run's log.
   */
  logs: {
    name: Nats.logsStream,
    subjects: [Nats.logsWildcard],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_msgs_per_subject: MAX_LOG_LINES_PER_RUN,
    max_age: nanos(7 * DAY_MS),
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

/**
 * The cancellations bucket (key: run id). One value per key is all anyone
 * reads. Keys age out after a week with the whole stream's `max_age`: the
 * per-key TTL is ignored by nats-server 2.9, and a week outlives any message
 * that could still start the run.
 */
export const CANCEL_BUCKET: Partial<KvOptions> = { history: 1, ttl: 7 * DAY_MS, storage: StorageType.File };

/** The results bucket (key: run id): kept as long as the run records that point into it. */
export const RESULTS_BUCKET: Partial<ObjectStoreOptions> = { storage: StorageType.File };

/** The KV bucket and object store the run API works with. */
export interface Buckets {
  /** Run ids whose cancellation was asked for. */
  cancellations: KV;
  /** Results too large to carry in an event. */
  results: ObjectStore;
}

/**
 * Creates (or opens) the cancellations bucket and the results store. Racing
 * another process that creates them with other settings is fine: theirs are
 * then opened as they are.
 */
export async function ensureBuckets(js: JetStreamClient, log: Logger): Promise<Buckets> {
  const kvm = new Kvm(js);
  const objm = new Objm(js);
  const cancellations = await kvm.create(Nats.cancelBucket, CANCEL_BUCKET).catch((err: unknown) => {
    log.debug({ err }, "could not create the cancellations bucket; opening it");
    return kvm.open(Nats.cancelBucket);
  });
  const results = await objm.create(Nats.resultsBucket, RESULTS_BUCKET).catch((err: unknown) => {
    log.debug({ err }, "could not create the results store; opening it");
    return objm.open(Nats.resultsBucket);
  });
  return { cancellations, results };
}
