import { z } from "zod";
import { JsonSchema, RunErrorSchema } from "./run.js";
import { TaskNameSchema } from "./names.js";
import { RunProgressSchema, TraceContextSchema } from "./progress.js";

/**
 * The payload of a task message on `offload.tasks.<task>`: everything a
 * worker needs to run it without asking the API.
 */
export const TaskMessageSchema = z.object({
  runId: z.string(),
  task: TaskNameSchema,
  parameters: JsonSchema,
  /**
   * Tries made before this dispatch. The worker's attempt number is
   * `attemptsBefore + deliveryCount`, so a redelivery counts as a new attempt
   * and a duplicated event never counts twice.
   */
  attemptsBefore: z.number().int().nonnegative(),
  /** Which dispatch of the run this is (0 for the first); part of the message id. */
  dispatch: z.number().int().nonnegative(),
  /** Per-run override of the task's timeout. */
  timeoutSeconds: z.number().positive().optional(),
  /** The trace context of the `delay()` call: the worker's span continues it (every dispatch carries it, retries too). */
  traceContext: TraceContextSchema.optional(),
});
export type TaskMessage = z.infer<typeof TaskMessageSchema>;

/** The kinds of event a worker publishes about a run. */
export const RunEventTypeSchema = z.enum(["RUNNING", "COMPLETED", "FAILED", "AWAITING_RETRY", "CANCELLED"]);
export type RunEventType = z.infer<typeof RunEventTypeSchema>;

/**
 * A progress report: published on the same subject as the run's state events,
 * so JetStream stores it and the run API reads it in order with them (the last
 * report before the outcome, never after it). Not a state: it changes only
 * `progress`, and only while the run is RUNNING the same attempt.
 */
export const RunProgressMessageSchema = z.object({
  runId: z.string(),
  task: TaskNameSchema,
  type: z.literal("PROGRESS"),
  attempt: z.number().int().positive(),
  workerId: z.string(),
  progress: RunProgressSchema,
});
export type RunProgressMessage = z.infer<typeof RunProgressMessageSchema>;

/** An event on `offload.events.<task>`, materialized into the run record by the run API. */
export const RunEventSchema = z.object({
  runId: z.string(),
  task: TaskNameSchema,
  type: RunEventTypeSchema,
  attempt: z.number().int().positive(),
  workerId: z.string(),
  at: z.iso.datetime({ offset: true }),
  /**
   * With an outcome (`AWAITING_RETRY`, `COMPLETED`, `FAILED`, `CANCELLED` of a
   * started try): when this try started, its `RUNNING`'s `at`. Two API
   * replicas may record a quick run's outcome before its `RUNNING`; the
   * record still gets its start.
   */
  startedAt: z.iso.datetime({ offset: true }).optional(),
  result: JsonSchema.optional(),
  /** Set instead of `result` when the result went to the object store. */
  resultRef: z.string().optional(),
  error: RunErrorSchema.optional(),
  /** With `AWAITING_RETRY`: when the next try is due. */
  retryAt: z.iso.datetime({ offset: true }).optional(),
  /** With `COMPLETED`: the result was served from an earlier run's cache. */
  cached: z.boolean().optional(),
  /** With `COMPLETED`: the cache key the result was stored or found under. */
  cacheKey: z.string().optional(),
});
export type RunEvent = z.infer<typeof RunEventSchema>;

/** Most events one {@link RunEventBatchSchema} message carries. */
export const MAX_EVENT_BATCH = 256;

/**
 * Several events in one JetStream message on `offload.events.<task>`: what a
 * busy worker sends instead of one message per event (each stored message,
 * and each publish's confirmation, costs nats-server and the worker a round
 * of work; a batch costs one). The entries are events and progress reports as
 * they would be sent alone, of runs of that task, in the order they happened;
 * the run API applies them in that order and acks the message once all are
 * recorded. The worker gives a batch a message id of its own (its worker id
 * and a sequence number) so that a retried publish is stored once. Entries
 * are checked one by one: a malformed one is dropped (and logged) without
 * refusing the others. A run API older than batches cannot read one: upgrade
 * the run API before the workers.
 */
export const RunEventBatchSchema = z.object({
  events: z.array(z.unknown()).min(1).max(MAX_EVENT_BATCH),
});
export type RunEventBatch = { events: (RunEvent | RunProgressMessage)[] };

/** What a worker process announces every few seconds on the heartbeat subject. */
export const HeartbeatSchema = z.object({
  workerId: z.string(),
  task: TaskNameSchema,
  concurrency: z.number().int().positive(),
  inFlight: z.number().int().nonnegative(),
  at: z.iso.datetime({ offset: true }),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/**
 * The value the run API writes under a run's id in the cancellations bucket
 * ({@link Nats.cancelBucket}). Workers need only the key's presence; the
 * value says when the cancel was asked for.
 */
export const CancellationSchema = z.object({ cancelledAt: z.iso.datetime({ offset: true }) });
export type Cancellation = z.infer<typeof CancellationSchema>;

/**
 * The `error.type` of a run the run API failed because its task message
 * reached its consumer's `max_deliver` without an outcome (the workers that
 * took it crashed, lost their connection or outlived the ack wait each time).
 */
export const MAX_DELIVERIES_ERROR_TYPE = "MaxDeliveriesExceeded";
