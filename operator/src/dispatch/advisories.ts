import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { MAX_DELIVERIES_ERROR_TYPE, Nats, TaskMessageSchema, type Run } from "@offload/sdk/internal";
import type { Logger } from "pino";
import { z } from "zod";
import type { Db } from "../store/db.js";
import { isUuid } from "../store/ids.js";
import { failUndelivered } from "../store/transitions.js";
import { parseOrUndefined } from "./logs.js";

/** The fields of JetStream's max-deliveries advisory this needs. */
const AdvisorySchema = z.object({ stream: z.string(), consumer: z.string(), stream_seq: z.number().int().positive(), deliveries: z.number().int() });

/**
 * Makes sure a run whose task message JetStream gave up on (it reached its
 * consumer's `max_deliver` without an ack) does not silently stay `PENDING`
 * or `RUNNING`: on the advisory it reads the message, marks its run `FAILED`
 * with a `MaxDeliveriesExceeded` error, and deletes the message. Every replica
 * hears every advisory (core NATS); the update is idempotent.
 */
export function startMaxDeliveriesWatch(
  nc: NatsConnection,
  jsm: JetStreamManager,
  db: Db,
  onFailed: (run: Run) => void,
  log: Logger,
): { stop(): Promise<void> } {
  const sub = nc.subscribe(Nats.maxDeliveriesAdvisory);
  const handle = async (data: unknown): Promise<void> => {
    const adv = AdvisorySchema.safeParse(data);
    if (!adv.success || adv.data.stream !== Nats.tasksStream) return;
    const { stream_seq: seq, deliveries, consumer } = adv.data;
    // null when it is gone already (another replica deleted it first).
    const stored = await jsm.streams.getMessage(Nats.tasksStream, { seq });
    if (!stored) return;
    const msg = TaskMessageSchema.safeParse(parseOrUndefined(stored.string()));
    if (msg.success && isUuid(msg.data.runId)) {
      const error = {
        type: MAX_DELIVERIES_ERROR_TYPE,
        message:
          `the task message was delivered ${deliveries} times (consumer ${consumer}) without an outcome: each time the worker ` +
          `crashed, lost its connection or outlived the ack wait; retry it with POST /v1/runs/${msg.data.runId}/retry`,
      };
      const run = await failUndelivered(db, msg.data.runId, msg.data.dispatch, error);
      if (run) {
        log.warn({ runId: run.id, deliveries, consumer }, "run failed: its task message ran out of deliveries");
        onFailed(run);
      }
    }
    // Dead either way: no consumer delivers it again, and a work queue would keep it forever.
    await jsm.streams.deleteMessage(Nats.tasksStream, seq, false).catch((err: unknown) => {
      // Another replica deleted it first.
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.NoMessageFound) throw err;
    });
  };
  const loop = (async () => {
    for await (const m of sub) {
      // The advisory comes once: keep trying through a database or NATS hiccup rather than drop it.
      for (let attempt = 1; ; attempt++) {
        try {
          await handle(parseOrUndefined(m.string()));
          break;
        } catch (err) {
          if (attempt >= 5 || sub.isClosed()) {
            log.error({ err, subject: m.subject }, "could not handle a max-deliveries advisory; its run may stay unfinished");
            break;
          }
          await sleep(500 * attempt);
        }
      }
    }
  })();
  return {
    async stop() {
      sub.unsubscribe();
      await loop;
    },
  };
}
