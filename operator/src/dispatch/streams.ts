import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type ConsumerConfig, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { Nats, ensureBuckets as ensureLayoutBuckets, ensureStreams as ensureLayoutStreams, type Buckets } from "@offload/sdk/internal";
import type { Logger } from "pino";

export type { Buckets };

/** The durable consumer every run API replica shares to materialize events. */
export const EVENTS_CONSUMER: Partial<ConsumerConfig> & { durable_name: string } = {
  durable_name: Nats.eventsConsumer,
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  ack_wait: nanos(30_000),
  max_deliver: -1,
  max_ack_pending: 10_000,
};

/**
 * Creates the streams of the NATS layout (shared with the workers, in the
 * SDK) and the events consumer if missing. Safe when several replicas (and
 * workers) start at once: losing the race to create is fine, and an existing
 * stream or consumer is accepted as it is (its owner may have tuned it).
 */
export async function ensureStreams(jsm: JetStreamManager, log: Logger): Promise<void> {
  await ensureLayoutStreams(jsm, (stream) => log.info({ stream }, "created stream"));
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

/** Creates (or opens) the cancellations bucket and the results store. */
export function ensureBuckets(js: JetStreamClient, log: Logger): Promise<Buckets> {
  return ensureLayoutBuckets(js, (what, err) => log.debug({ err, bucket: what }, "could not create the bucket; opened the existing one"));
}
