import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { Nats, RunEventSchema, type Run, type RunEvent } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import { isUuid } from "../store/ids.js";
import { applyEvent } from "../store/events.js";

/** Options of {@link startEventMaterializer}. */
export interface MaterializerOptions {
  /** Called with the run after an event changed it (feeds result long-polls and event streams). */
  onApplied(run: Run): void;
  /** Called for every well-formed event once handled, with whether it changed the run (for metrics). */
  onHandled?(event: RunEvent, applied: boolean): void;
  /** Events written to the database at once by this replica. @defaultValue 32 */
  concurrency?: number;
}

/**
 * Reads run events from the shared durable consumer on `OFFLOAD_EVENTS` and
 * writes them into the run records (the transition checks live in
 * {@link applyEvent}). An event is acked only after its write, so a crash
 * redelivers it; a malformed event is logged and terminated, never retried.
 * Events of one run are applied in the order received; different runs in
 * parallel.
 */
export async function startEventMaterializer(
  db: Db,
  js: JetStreamClient,
  opts: MaterializerOptions,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const consumer = await js.consumers.get(Nats.eventsStream, Nats.eventsConsumer);
  const limit = opts.concurrency ?? 32;
  const messages: ConsumerMessages = await consumer.consume({ max_messages: limit * 4 });
  const perRun = new Map<string, Promise<void>>();
  const inFlight = new Set<Promise<void>>();

  const handle = async (m: JsMsg, event: RunEvent): Promise<void> => {
    try {
      const run = await applyEvent(db, event);
      m.ack();
      opts.onHandled?.(event, run !== undefined);
      if (run) opts.onApplied(run);
      else log.debug({ runId: event.runId, type: event.type, attempt: event.attempt }, "event changed nothing (late, duplicated, or unknown run)");
    } catch (err) {
      // The database is unreachable or failing: let JetStream bring the event back later.
      log.warn({ err, runId: event.runId, type: event.type }, "could not record event; will retry");
      m.nak(2000);
    }
  };

  const loop = (async () => {
    for await (const m of messages) {
      const parsed = parse(m);
      if (!parsed.success) {
        log.error({ subject: m.subject, seq: m.seq, problem: parsed.problem }, "malformed run event; terminated");
        m.term();
        continue;
      }
      const event = parsed.event;
      const before = perRun.get(event.runId) ?? Promise.resolve();
      const job = before.then(() => handle(m, event));
      perRun.set(event.runId, job);
      inFlight.add(job);
      void job.finally(() => {
        inFlight.delete(job);
        if (perRun.get(event.runId) === job) perRun.delete(event.runId);
      });
      if (inFlight.size >= limit) await Promise.race(inFlight);
    }
  })().catch((err: unknown) => {
    // Not expected (the iterator retries on its own); if it happens, runs stop moving, so say so loudly.
    log.error({ err }, "event materializer stopped; run states will not be updated");
  });

  return {
    async stop() {
      await messages.close();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
  };
}

function parse(m: JsMsg): { success: true; event: RunEvent } | { success: false; problem: string } {
  let data: unknown;
  try {
    data = m.json();
  } catch {
    return { success: false, problem: "not JSON" };
  }
  const r = RunEventSchema.safeParse(data);
  if (!r.success) return { success: false, problem: r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ") };
  // Run ids are UUIDs; anything else would fail in SQL and be redelivered forever.
  if (!isUuid(r.data.runId)) return { success: false, problem: "runId: not a run id (a UUID)" };
  return { success: true, event: r.data };
}
