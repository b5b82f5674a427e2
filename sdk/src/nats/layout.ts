import { JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import { Objm, type ObjectStore, type ObjectStoreOptions } from "@nats-io/obj";
import { nanos } from "@nats-io/transport-node";
import { MAX_LOG_LINES_PER_RUN, Nats } from "../protocol/index.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The streams of the NATS layout. The run API and every worker ensure them at
 * start from this one definition, so whichever process comes first creates
 * them and none can disagree about their settings.
 */
export const STREAM_CONFIGS = {
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

// JetStream's "stream name already in use": another process created it between our info and add.
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates the streams that are missing; an existing stream is accepted as it
 * is (its owner may have tuned it). Safe to race with other processes doing
 * the same. `onCreated` hears of each stream this call created.
 */
export async function ensureStreams(jsm: JetStreamManager, onCreated?: (stream: string) => void): Promise<void> {
  for (const cfg of Object.values(STREAM_CONFIGS)) {
    try {
      await jsm.streams.info(cfg.name);
      continue;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    }
    try {
      await jsm.streams.add({ ...cfg, subjects: [...cfg.subjects] });
      onCreated?.(cfg.name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    }
  }
}

/**
 * The cancellations bucket (key: run id). One value per key is all anyone
 * reads. Keys age out after a week with the whole stream's `max_age`: the
 * per-key TTL is ignored by nats-server 2.9, and a week outlives any message
 * that could still start the run.
 */
export const CANCEL_BUCKET: Partial<KvOptions> = { history: 1, ttl: 7 * DAY_MS, storage: StorageType.File };

/** The results store (key: run id): kept as long as the run records that point into it. */
export const RESULTS_BUCKET: Partial<ObjectStoreOptions> = { storage: StorageType.File };

/** The KV bucket and object store of the NATS layout. */
export interface Buckets {
  /** Run ids whose cancellation was asked for. */
  cancellations: KV;
  /** Results too large to carry in an event. */
  results: ObjectStore;
}

/**
 * Creates (or opens) the cancellations bucket and the results store. Racing
 * another process that creates them is fine: theirs are then opened as they
 * are. `onOpenedExisting` hears why a create fell back to opening.
 */
export async function ensureBuckets(js: JetStreamClient, onOpenedExisting?: (what: string, err: unknown) => void): Promise<Buckets> {
  const kvm = new Kvm(js);
  const objm = new Objm(js);
  const cancellations = await kvm.create(Nats.cancelBucket, CANCEL_BUCKET).catch((err: unknown) => {
    onOpenedExisting?.(Nats.cancelBucket, err);
    return kvm.open(Nats.cancelBucket);
  });
  const results = await objm.create(Nats.resultsBucket, RESULTS_BUCKET).catch((err: unknown) => {
    onOpenedExisting?.(Nats.resultsBucket, err);
    return objm.open(Nats.resultsBucket);
  });
  return { cancellations, results };
}
