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
import { MAX_LOG_LINES_PER_RUN, Nats } from "../protocol/index.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The streams of the NATS layout. Workers and the run API both ensure them at
 * start with the same config (operator/src/dispatch/streams.ts), so whichever
 * comes first creates them; an existing stream is accepted as it is.
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
    max_age: nanos(DAY_MS),
  },
  /** Log lines of runs, one subject per run, the newest `MAX_LOG_LINES_PER_RUN` kept per run, for a week. */
  logs: {
    name: Nats.logsStream,
    subjects: [Nats.logsWildcard],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_msgs_per_subject: MAX_LOG_LINES_PER_RUN,
    max_age: nanos(7 * DAY_MS),
  },
} as const satisfies Record<string, Partial<StreamConfig> & { name: string }>;

// JetStream's "stream name already in use" (another process created it between our info and add).
const STREAM_NAME_IN_USE = 10058;

/** Creates `OFFLOAD_TASKS`, `OFFLOAD_EVENTS` and `OFFLOAD_LOGS` if they are missing. Safe to race with other processes doing the same. */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const cfg of Object.values(STREAM_CONFIGS)) {
    try {
      await jsm.streams.info(cfg.name);
      continue;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw err;
    }
    try {
      await jsm.streams.add({ ...cfg, subjects: [...cfg.subjects] });
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

/**
 * The cancellations bucket, as the run API creates it: one value per run id,
 * kept a week (the stream's max age: nats-server 2.9 ignores per-key TTLs).
 */
export const CANCEL_BUCKET: Partial<KvOptions> = { history: 1, ttl: 7 * DAY_MS, storage: StorageType.File };

/** The results store, as the run API creates it. */
export const RESULTS_BUCKET: Partial<ObjectStoreOptions> = { storage: StorageType.File };

/** The KV bucket and object store a worker works with. */
export interface WorkerBuckets {
  /** Run ids whose cancellation was asked for (key: run id). */
  cancellations: KV;
  /** Results too large to carry in an event (key: run id). */
  results: ObjectStore;
}

/**
 * Creates (or opens) the cancellations bucket and the results store. If
 * another process created them (perhaps with other settings), they are
 * opened as they are.
 */
export async function ensureBuckets(js: JetStreamClient): Promise<WorkerBuckets> {
  const kvm = new Kvm(js);
  const objm = new Objm(js);
  const cancellations = await kvm.create(Nats.cancelBucket, CANCEL_BUCKET).catch(() => kvm.open(Nats.cancelBucket));
  const results = await objm.create(Nats.resultsBucket, RESULTS_BUCKET).catch(() => objm.open(Nats.resultsBucket));
  return { cancellations, results };
}
