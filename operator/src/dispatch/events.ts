import { setTimeout as sleep } from "node:timers/promises";
import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import {
  boundedStack,
  jsonProblem,
  MAX_JSON_DEPTH,
  Nats,
  RunEventBatchSchema,
  RunEventSchema,
  RunProgressMessageSchema,
  storableText,
  type RunError,
  type RunEvent,
} from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import { isUuid } from "../store/ids.js";
import { applyEventBatch, applyEvents, batchStatements, type RunChange, type WorkerEvent } from "../store/events.js";

/** Options of {@link startEventMaterializer}. */
export interface MaterializerOptions {
  /** Called with the run after an event changed it (feeds result long-polls and event streams). */
  onApplied(change: RunChange): void;
  /** Called for every well-formed event once handled, with whether it changed the run (for metrics). */
  onHandled?(event: WorkerEvent, applied: boolean): void;
  /** Most events written in one batch. @defaultValue 256 */
  batchSize?: number;
}

/** A JetStream message (one event, or a worker's batch of them) and how many of its events are not yet settled. */
interface Delivery {
  m: JsMsg;
  left: number;
  /** One of its events could not be recorded: the message is naked once all are settled, not acked. */
  refused: boolean;
}

interface Received {
  delivery: Delivery;
  event: WorkerEvent;
  /** When a batch first found the event's run held by another transaction. */
  heldSince?: number;
}

/** How long JetStream waits before redelivering an event the database could not take. */
const RETRY_DELAY_MS = 2000;
/** How long an event whose run another transaction holds is retried in later batches before it waits for the row alone. */
const HELD_RETRY_MS = 250;
/** The pause before retrying when only such events are left. */
const HELD_PAUSE_MS = 5;

/**
 * Reads run events from the shared durable consumer on `OFFLOAD_EVENTS` and
 * writes them into the run records (the transition checks live in
 * {@link applyEventBatch}). A message holds one event, or a worker's batch of
 * them ({@link RunEventBatchSchema}). Events are written in batches, one at a
 * time: each run's events in the order received (those of a run another
 * transaction holds are retried with the next batches). A message is acked
 * only once all its events are recorded, so a crash redelivers it; naked if
 * one of them could not be (its redelivery applies the others again, which
 * changes nothing: the transition checks make a duplicate a no-op). A
 * malformed event is logged and dropped, never retried (a message with no
 * well-formed event is terminated). A failed batch is retried one event at a
 * time, so an event the database refuses is redelivered later without
 * holding back the others.
 */
export async function startEventMaterializer(
  db: Db,
  js: JetStreamClient,
  opts: MaterializerOptions,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const consumer = await js.consumers.get(Nats.eventsStream, Nats.eventsConsumer);
  const batchSize = opts.batchSize ?? 256;
  // Room for the next batch while one is written; beyond that the reader waits and JetStream keeps the rest.
  const maxQueued = batchSize * 2;
  const messages: ConsumerMessages = await consumer.consume({ max_messages: maxQueued });
  const queue: Received[] = [];
  const arrived = signal();
  const drained = signal();
  let reading = true;

  const finish = (d: Delivery): void => {
    if (--d.left > 0) return;
    if (d.refused) d.m.nak(RETRY_DELAY_MS);
    else d.m.ack();
  };

  const settle = ({ delivery, event }: Received, change: RunChange | undefined): void => {
    finish(delivery);
    opts.onHandled?.(event, change !== undefined);
    if (change) opts.onApplied(change);
    else log.debug({ runId: event.runId, type: event.type, attempt: event.attempt }, "event changed nothing (late, duplicated, or unknown run)");
  };

  const refuse = ({ delivery, event }: Received, err: unknown): void => {
    log.warn({ err, runId: event.runId, type: event.type }, "could not record event; will retry");
    delivery.refused = true;
    finish(delivery);
  };

  /** Writes a batch; answers how many of its events were put back at the head of the queue (their runs were held). */
  const writeBatch = async (batch: Received[]): Promise<number> => {
    // Each round trip to PostgreSQL costs more than its statement: a few events of few runs (at low load, one
    // run's RUNNING and COMPLETED) cost fewer statements one by one than as a batch in a transaction.
    if (batch.length <= batchStatements(batch.map((r) => r.event))) return writeOneByOne(batch).then(() => 0);
    let written;
    try {
      written = await applyEventBatch(db, batch.map((r) => r.event));
    } catch (err) {
      log.warn({ err, events: batch.length }, "could not record a batch of events; retrying them one by one");
      await writeOneByOne(batch);
      return 0;
    }
    const held = new Set(written.held);
    batch.forEach((r, i) => held.has(i) || settle(r, written.changes[i]));
    // Runs held by another transaction (a dispatch marking them PENDING, mostly) are free again within
    // milliseconds: retry them with the next batches, ahead of their runs' later events. One held for
    // longer (or unknown) is written alone, which waits for the row while holding no other.
    const now = Date.now();
    const retry: Received[] = [];
    const alone: Received[] = [];
    for (const i of written.held) {
      const r = batch[i]!;
      (now - (r.heldSince ??= now) < HELD_RETRY_MS ? retry : alone).push(r);
    }
    await writeOneByOne(alone);
    queue.unshift(...retry);
    return retry.length;
  };

  const writeOneByOne = async (batch: Received[]): Promise<void> => {
    for (const [i, r] of batch.entries()) {
      try {
        settle(r, (await applyEvents(db, [r.event]))[0]);
      } catch (err) {
        refuse(r, err);
        // The event is to blame only if the database still answers; if it does not, the rest would fail
        // the same way (each after a connect timeout), so they go back to JetStream at once.
        const up = await db.query("SELECT 1").then(() => true, () => false);
        if (!up) {
          for (const rest of batch.slice(i + 1)) refuse(rest, err);
          return;
        }
      }
    }
  };

  const reader = (async () => {
    for await (const m of messages) {
      const { events, problems } = parse(m);
      for (const { index, problem } of problems) {
        log.error({ subject: m.subject, seq: m.seq, ...(index !== undefined ? { index } : {}), problem }, "malformed run event; dropped");
      }
      if (events.length === 0) {
        m.term();
        continue;
      }
      const delivery: Delivery = { m, left: events.length, refused: false };
      for (const event of events) queue.push({ delivery, event });
      arrived.notify();
      while (queue.length >= maxQueued) await drained.wait();
    }
  })()
    .catch((err: unknown) => {
      // Not expected (the iterator retries on its own); if it happens, runs stop moving, so say so loudly.
      log.error({ err }, "event materializer stopped; run states will not be updated");
    })
    .finally(() => {
      reading = false;
      arrived.notify();
    });

  const writer = (async () => {
    for (;;) {
      if (queue.length === 0) {
        if (!reading) return;
        await arrived.wait();
        // Idle until now: let the messages already received join this batch, but wait for no more. Under load
        // batches fill by themselves, with what arrives while the previous one commits; a lone event goes at once.
        await new Promise(setImmediate);
        continue;
      }
      const batch = queue.splice(0, batchSize);
      drained.notify();
      try {
        const retried = await writeBatch(batch);
        // Nothing new came in meanwhile: give the transactions holding those runs a moment instead of spinning.
        if (retried > 0 && queue.length === retried) await sleep(HELD_PAUSE_MS);
      } catch (err) {
        // Only a throwing callback gets here; the batch's unsettled events come back after the ack wait.
        log.error({ err }, "event batch handling failed");
      }
    }
  })();

  return {
    async stop() {
      await messages.close();
      await reader;
      await writer;
    },
  };
}

/** A wake-up call: `wait()` resolves at the next `notify()`. */
function signal(): { wait(): Promise<void>; notify(): void } {
  let wake!: () => void;
  let next = new Promise<void>((resolve) => (wake = resolve));
  return {
    wait: () => next,
    notify() {
      wake();
      next = new Promise<void>((resolve) => (wake = resolve));
    },
  };
}

/** A message's well-formed events in order, and what was wrong with the others (`index` within a batch). */
function parse(m: JsMsg): { events: WorkerEvent[]; problems: { index?: number; problem: string }[] } {
  let data: unknown;
  try {
    data = m.json();
  } catch {
    return { events: [], problems: [{ problem: "not JSON" }] };
  }
  if (!isBatch(data)) {
    const one = parseEvent(data);
    return one.success ? { events: [one.event], problems: [] } : { events: [], problems: [{ problem: one.problem }] };
  }
  // The schema takes the entries as unknown (zod does not recurse into them): each is bounded and checked below.
  const batch = RunEventBatchSchema.safeParse(data);
  if (!batch.success) return { events: [], problems: [{ problem: `not a batch of events: ${issues(batch.error.issues)}` }] };
  const events: WorkerEvent[] = [];
  const problems: { index: number; problem: string }[] = [];
  batch.data.events.forEach((entry, index) => {
    const one = parseEvent(entry);
    if (one.success) events.push(one.event);
    else problems.push({ index, problem: one.problem });
  });
  return { events, problems };
}

/** A batch says `events`; a single event says `type`. */
const isBatch = (data: unknown): boolean => typeof data === "object" && data !== null && !("type" in data) && "events" in data;

const issues = (list: readonly { path: readonly PropertyKey[]; message: string }[]): string =>
  list.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`).join("; ");

function parseEvent(input: unknown): { success: true; event: WorkerEvent } | { success: false; problem: string } {
  const data = withStorableResult(input);
  // Bounded before zod recurses into it: a deeper event would overflow the stack and stop this materializer.
  const shape = jsonProblem(data, { maxDepth: MAX_JSON_DEPTH + 2, text: false });
  if (shape) return { success: false, problem: `${shape.path || "(root)"}: ${shape.message}` };
  const progress = isProgress(data);
  const r = progress ? RunProgressMessageSchema.safeParse(data) : RunEventSchema.safeParse(data);
  if (!r.success) return { success: false, problem: issues(r.error.issues) };
  // Run ids are UUIDs; anything else would fail in SQL and be redelivered forever.
  if (!isUuid(r.data.runId)) return { success: false, problem: "runId: not a run id (a UUID)" };
  return { success: true, event: r.data.type === "PROGRESS" ? withStorableProgress(r.data) : withStorableText(r.data) };
}

/**
 * A COMPLETED event whose result the run record cannot hold (nested deeper
 * than {@link MAX_JSON_DEPTH}, which breaks the embedded database; U+0000 or a
 * lone surrogate, which PostgreSQL refuses) becomes the run's failure, saying
 * why: refusing the event instead would leave the run RUNNING for ever, and
 * retrying it would fail the same way each time.
 */
function withStorableResult(data: unknown): unknown {
  if (data === null || typeof data !== "object" || Array.isArray(data) || !("result" in data)) return data;
  const problem = jsonProblem((data as { result: unknown }).result, { maxDepth: MAX_JSON_DEPTH, text: true });
  if (!problem) return data;
  const { result: _dropped, ...rest } = data as Record<string, unknown>;
  const where = problem.path ? ` at ${problem.path}` : "";
  return { ...rest, type: "FAILED", error: { type: "ResultNotStorable", message: `the task's result cannot be stored: the value${where} ${problem.message}` } };
}

const isProgress = (data: unknown): boolean => typeof data === "object" && data !== null && (data as { type?: unknown }).type === "PROGRESS";

/** A progress report with its message storable (see {@link withStorableText}). */
function withStorableProgress(event: Extract<WorkerEvent, { type: "PROGRESS" }>): WorkerEvent {
  const { message } = event.progress;
  return { ...event, workerId: storable(event.workerId), progress: { ...event.progress, ...(message !== undefined ? { message: storable(message) } : {}) } };
}

// U+0000 and lone surrogates: PostgreSQL stores neither in text.
const storable = <T extends string | undefined>(text: T): T => (text === undefined ? text : (storableText(text) as T));

/** A worker's error as the record keeps it: storable text, and a stack no longer than any worker of this version sends. */
function storableError({ type, message, stack }: RunError): RunError {
  return { type: storable(type), message: storable(message), ...(stack !== undefined ? { stack: boundedStack(storable(stack)) } : {}) };
}

/** Diagnostic text a worker sent (error, worker id, keys) with what PostgreSQL cannot store replaced by U+FFFD. */
function withStorableText(event: RunEvent): RunEvent {
  return {
    ...event,
    workerId: storable(event.workerId),
    ...(event.error ? { error: storableError(event.error) } : {}),
    ...(event.cacheKey !== undefined ? { cacheKey: storable(event.cacheKey) } : {}),
    ...(event.resultRef !== undefined ? { resultRef: storable(event.resultRef) } : {}),
  };
}
