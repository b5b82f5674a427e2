import { z } from "zod";
import { TaskNameSchema } from "./names.js";
import { isRealTimestamp, jsonProblem, MAX_JSON_DEPTH, unstorableText } from "./limits.js";
import { RunStateSchema } from "./states.js";
import { RunProgressSchema, TraceContextSchema } from "./progress.js";
import { LimitKeySchema, PrioritySchema, RegisteredTaskSchema, WaitingForSchema } from "./flow.js";

/** Any JSON value: what parameters and results are made of. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export const JsonSchema: z.ZodType<Json> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonSchema), z.record(z.string(), JsonSchema)]),
);

/**
 * The most characters of a stack trace a run records (8 KiB of text). Node
 * keeps 10 frames, so only a huge message (which the stack repeats on its
 * first line) or a long chain of frames of long paths comes near it; the
 * bound keeps one bad throw from bloating every read of the run.
 */
export const MAX_ERROR_STACK = 8192;

/**
 * `stack` as a run records it: unchanged up to {@link MAX_ERROR_STACK}
 * characters; longer, its head (the throw and the frames nearest it, what a
 * reader needs) ending on a line of its own that says it was cut, all within
 * the bound. Both the worker and the run API apply it, so a worker of another
 * version cannot store more.
 */
export function boundedStack(stack: string): string {
  if (stack.length <= MAX_ERROR_STACK) return stack;
  const marker = `\n    … (the stack was ${stack.length} characters: cut to ${MAX_ERROR_STACK})`;
  const room = MAX_ERROR_STACK - marker.length;
  let head = stack.slice(0, room);
  // End on a whole frame when one ends in the second half; else cut mid-line, never between the halves of a surrogate pair.
  const lineEnd = head.lastIndexOf("\n");
  if (lineEnd > room / 2) head = head.slice(0, lineEnd);
  else if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return head + marker;
}

/** Why a run failed: the error's class name (`type`), its message and, when the task threw an Error, where. */
export const RunErrorSchema = z.object({
  type: z.string().describe("The error's class name, e.g. `TypeError` or `TimeoutError`."),
  message: z.string().describe("The error's message."),
  stack: z
    .string()
    .optional()
    .describe(
      `The stack trace where the task threw, as Node wrote it (\`error.stack\`: its first line is the type and message). ` +
        `At most ${MAX_ERROR_STACK} characters: a longer one keeps its head and ends with the line \`… (the stack was N characters: cut to ${MAX_ERROR_STACK})\`. ` +
        "Absent when the task threw something that is not an Error (a string, a plain object), and for failures Offload itself " +
        "declares (a timeout, invalid parameters, a result that cannot be serialized or stored, a lost or malformed message): " +
        "there a stack would point into Offload, not into the task.",
    ),
});
export type RunError = z.infer<typeof RunErrorSchema>;

const isoDate = z.iso.datetime({ offset: true });

/** A Kubernetes namespace name (a DNS-1123 label, as the API server requires of namespaces). */
export const NamespaceSchema = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a Kubernetes namespace name: lowercase letters, digits and '-', at most 63 characters");

/** A run as the run API returns it. Times are ISO 8601 strings. */
export const RunSchema = z.object({
  id: z.string().describe("The run's id (a UUID)."),
  task: TaskNameSchema.describe("The task's name."),
  state: RunStateSchema,
  parameters: JsonSchema.describe("The task's input, as given to `delay()`."),
  attempts: z.number().int().nonnegative().describe("How many times a worker has started this run."),
  createdAt: isoDate,
  scheduledAt: isoDate.describe("When the run is due; equal to `createdAt` unless it was scheduled."),
  startedAt: isoDate.nullable().describe("When a worker last started it."),
  finishedAt: isoDate.nullable().describe("When it reached a terminal state."),
  updatedAt: isoDate.describe("When the record last changed: for a finished run, when the run API recorded its outcome."),
  result: JsonSchema.nullable().describe("The result once `COMPLETED` (null while it is stored externally: see `resultRef`)."),
  resultRef: z.string().nullable().describe("Where a large result is stored (object store key), or null."),
  error: RunErrorSchema.nullable(),
  cacheKey: z.string().nullable(),
  cached: z.boolean().describe("True when the result was served from an earlier run's cache."),
  idempotencyKey: z.string().nullable(),
  workerId: z.string().nullable().describe("The worker that last ran it."),
  progress: RunProgressSchema.optional().describe("The task's last `ctx.progress(...)` report; absent until it makes one."),
  traceContext: TraceContextSchema.optional().describe("The trace context `delay()` was called in; absent when there was none."),
  namespace: z.string().describe("The Kubernetes namespace the run was delayed from: its reads, cancel and retry are authorized there."),
  priority: PrioritySchema,
  concurrencyKey: z.string().nullable().describe("The key its task's concurrency limit counts it under (null: the whole task's)."),
  rateLimitKey: z.string().nullable().describe("The key its task's rate limit counts it under (null: the whole task's)."),
  waitingFor: WaitingForSchema.nullable().describe("Why a PENDING run has not been dispatched yet (a limit); null otherwise."),
});
export type Run = z.infer<typeof RunSchema>;

/**
 * The answer of `POST /v1/runs`: the run, and `warnings` when something about
 * it could not be checked (e.g. no worker has registered the task yet, so its
 * parameters were not validated and its limits are not known).
 */
export const SubmittedRunSchema = RunSchema.extend({
  warnings: z.array(z.string()).optional().describe("What the run API could not check about this run; absent when nothing."),
});
export type SubmittedRun = z.infer<typeof SubmittedRunSchema>;

/**
 * The longest timeout a run may have: a week. Longer work belongs in smaller
 * runs; and past ~24.8 days Node's timers overflow and fire at once.
 */
export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

/**
 * The longest cache lifetime one may ask for: 100 years (unset means forever).
 * The bound keeps `finished_at + lifetime` within PostgreSQL's time range.
 */
export const MAX_CACHE_EXPIRES_SECONDS = 100 * 365 * 24 * 3600;

/** A string PostgreSQL can store (see {@link unstorableText}). */
const storable = <S extends z.ZodString>(schema: S) =>
  schema.superRefine((text, ctx) => {
    const why = unstorableText(text);
    if (why) ctx.addIssue({ code: "custom", message: why });
  });

/** A real instant within PostgreSQL's range (see {@link isRealTimestamp}). */
const realTimestamp = isoDate.refine(isRealTimestamp, "is not a real date and time (e.g. month 13, February 30, hour 24 or year 0)");

/** The body of `POST /v1/runs`. Unknown fields are rejected. */
export const CreateRunBodySchema = z.strictObject({
  task: TaskNameSchema,
  parameters: JsonSchema.optional()
    .superRefine((p, ctx) => {
      // Every string and key is stored (jsonb); depth and size bounds keep PGlite and the validators whole.
      const problem = p === undefined ? undefined : jsonProblem(p, { maxDepth: MAX_JSON_DEPTH, text: true });
      if (problem) ctx.addIssue({ code: "custom", message: problem.path ? `${problem.path}: ${problem.message}` : problem.message });
    })
    .describe(`The task's input; checked again by the worker against the task's schema. At most ${MAX_JSON_DEPTH} levels deep.`),
  idempotencyKey: storable(z.string().min(1).max(256)).optional().describe("A second run with the same key returns the first."),
  scheduledAt: realTimestamp.optional().describe("Do not dispatch before this time."),
  timeoutSeconds: z.number().positive().max(MAX_TIMEOUT_SECONDS).optional().describe("Overrides the task's `timeoutSeconds` for this run."),
  cacheKey: storable(z.string().min(1).max(512)).optional().describe("Computed by the SDK from the task's cache policy: an unexpired COMPLETED run with this key is reused."),
  cacheExpiresInSeconds: z
    .number()
    .positive()
    .max(MAX_CACHE_EXPIRES_SECONDS)
    .optional()
    .describe("How long this run's result may serve as a cache hit once completed; unset: forever."),
  traceContext: TraceContextSchema.optional().describe(
    "The caller's W3C trace context: the worker's span for the run joins that trace. The SDK sets it from the active span.",
  ),
  namespace: NamespaceSchema.optional().describe(
    "The namespace to record the run in (the caller needs `create` on `runs` there). Unset: the caller's own ServiceAccount namespace, or `default`.",
  ),
  priority: PrioritySchema.optional(),
  concurrencyKey: LimitKeySchema.optional().describe("Computed by the SDK from the task's `concurrency.key`: the limit holds per key."),
  rateLimitKey: LimitKeySchema.optional().describe("Computed by the SDK from the task's `rateLimit.key`: the limit holds per key."),
});
export type CreateRunBody = z.infer<typeof CreateRunBodySchema>;

/** Most runs one batch call may create. */
export const MAX_BATCH = 5000;

/** The body of `POST /v1/runs/batch`. */
export const CreateRunsBatchBodySchema = z.strictObject({
  runs: z.array(CreateRunBodySchema).min(1).max(MAX_BATCH),
});

/** The answer of `POST /v1/runs/batch`: the runs, in the order asked, and what could not be checked. */
export const CreateRunsBatchResponseSchema = z.object({
  runs: z.array(RunSchema),
  warnings: z.array(z.string()).optional().describe("What the run API could not check about these runs (each said once); absent when nothing."),
});

/** Query of `GET /v1/runs`. */
export const ListRunsQuerySchema = z.strictObject({
  namespace: NamespaceSchema.optional().describe(
    "Only runs of this namespace (the caller needs `list` on `runs` there). Unset: with Kubernetes auth, the caller's own ServiceAccount namespace; otherwise every namespace.",
  ),
  task: TaskNameSchema.optional(),
  state: RunStateSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional().describe("The `nextCursor` of the previous page."),
});
export type ListRunsQuery = z.infer<typeof ListRunsQuerySchema>;

export const ListRunsResponseSchema = z.object({
  runs: z.array(RunSchema),
  nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page."),
});
export type ListRunsResponse = z.infer<typeof ListRunsResponseSchema>;

/** Query of `GET /v1/runs/:id/result`. */
export const ResultQuerySchema = z.strictObject({
  wait: z.coerce.number().min(0).max(60).default(0).describe("Seconds to long-poll for the run to finish."),
});

/**
 * The answer of `GET /v1/runs/:id/result`: `200` with the result once
 * `COMPLETED`; `202` with `done: false` while the run is not finished.
 * A `FAILED` or `CANCELLED` run answers with an error body instead.
 */
export const ResultResponseSchema = z.object({
  id: z.string(),
  state: RunStateSchema,
  done: z.boolean(),
  result: JsonSchema.nullable(),
  cached: z.boolean(),
});
export type ResultResponse = z.infer<typeof ResultResponseSchema>;

/** One line a run logged through `ctx.log`. */
export const RunLogLineSchema = z.object({
  at: isoDate,
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]),
  msg: z.string(),
  attempt: z.number().int().positive(),
  /** The other fields of the log call, if any. */
  data: z.record(z.string(), JsonSchema).optional(),
});
export type RunLogLine = z.infer<typeof RunLogLineSchema>;

/** Most log lines kept per run; older ones are dropped first. */
export const MAX_LOG_LINES_PER_RUN = 1000;

/** The answer of `GET /v1/runs/:id/logs`: oldest first, newest last. */
export const RunLogsResponseSchema = z.object({
  lines: z.array(RunLogLineSchema),
  truncated: z.boolean().describe("True when older lines were dropped to keep the bound."),
});

/** A worker process serving a task, as its heartbeats describe it. */
export const TaskWorkerInfoSchema = z.object({
  workerId: z.string(),
  concurrency: z.number().int().positive(),
  inFlight: z.number().int().nonnegative(),
  lastSeenAt: isoDate,
});

/** A task known to the run API: from its runs and from the workers that serve it. */
export const TaskInfoSchema = z.object({
  name: TaskNameSchema,
  backlog: z.number().int().nonnegative().describe("Runs dispatched and not yet taken by a worker."),
  inFlight: z.number().int().nonnegative().describe("Runs a worker has taken and not yet acknowledged."),
  workers: z.array(TaskWorkerInfoSchema).describe("Worker processes heard from in the last 15 s."),
  definition: RegisteredTaskSchema.optional().describe("What the last worker to register the task said of it; absent while none has."),
});
export type TaskInfo = z.infer<typeof TaskInfoSchema>;
export const ListTasksResponseSchema = z.object({ tasks: z.array(TaskInfoSchema) });
