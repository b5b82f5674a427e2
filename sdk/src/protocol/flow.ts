import { z } from "zod";
import { TaskNameSchema } from "./names.js";
import { unstorableText } from "./limits.js";

const isoDate = z.iso.datetime({ offset: true });

/** A run's priority: 1 starts first, 5 last. */
export const PRIORITY = { first: 1, last: 5, default: 3 } as const;
export const PrioritySchema = z
  .number()
  .int()
  .min(PRIORITY.first)
  .max(PRIORITY.last)
  .describe(
    `Among runs of a task that wait in the run API (a task with a concurrency or rate limit), lower numbers start first: ${PRIORITY.first} (first) … ${PRIORITY.last} (last), default ${PRIORITY.default}.`,
  );

/** Longest concurrency or rate-limit key, in characters. */
export const MAX_LIMIT_KEY = 256;

/** A concurrency or rate-limit key (e.g. a tenant id), computed by the SDK from the run's input. */
export const LimitKeySchema = z
  .string()
  .min(1)
  .max(MAX_LIMIT_KEY)
  .superRefine((text, ctx) => {
    const why = unstorableText(text);
    if (why) ctx.addIssue({ code: "custom", message: why });
  });

/** Most runs one concurrency limit may let run at once; most starts one rate limit may allow per period. */
export const MAX_LIMIT = 100_000;
/** Longest rate-limit period: a day. */
export const MAX_RATE_PERIOD_SECONDS = 86_400;

/**
 * A task's concurrency limit as registered: at most `limit` runs of the task
 * (per concurrency key when `keyed`) are dispatched and unfinished at once,
 * across every worker and run API replica.
 */
export const ConcurrencyLimitSchema = z.strictObject({
  limit: z.number().int().min(1).max(MAX_LIMIT),
  keyed: z.boolean().describe("True when the task computes a key per run (then the limit holds per key); false: one limit for the whole task."),
});
export type ConcurrencyLimit = z.infer<typeof ConcurrencyLimitSchema>;

/** A task's rate limit as registered: at most `limit` starts (dispatches) per `periodSeconds`, per key when `keyed`. */
export const RateLimitSchema = z.strictObject({
  limit: z.number().int().min(1).max(MAX_LIMIT),
  periodSeconds: z.number().positive().max(MAX_RATE_PERIOD_SECONDS),
  keyed: z.boolean(),
});
export type RateLimit = z.infer<typeof RateLimitSchema>;

/**
 * Why a `PENDING` run has not started: it waits in the run API (it holds no
 * worker slot and is in no queue of NATS) until the limit lets it go. `key`
 * is null for a limit on the whole task. Refreshed when the run API looks at
 * the run again, so `running`/`started` are as of `updatedAt`.
 */
export const WaitingForSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("concurrency"),
    key: z.string().nullable(),
    limit: z.number().int().positive(),
    running: z.number().int().nonnegative().describe("Runs of this key dispatched and not finished when the run API last looked."),
  }),
  z.object({
    kind: z.literal("rateLimit"),
    key: z.string().nullable(),
    limit: z.number().int().positive(),
    periodSeconds: z.number().positive(),
    started: z.number().int().nonnegative().describe("Runs of this key started in the last period when the run API last looked."),
    nextSlotAt: isoDate.describe("When the oldest start in the window leaves it."),
  }),
]);
export type WaitingFor = z.infer<typeof WaitingForSchema>;

/** A JSON Schema (draft 2020-12), as `z.toJSONSchema()` writes one. */
export const JsonSchemaObjectSchema = z.record(z.string(), z.unknown());

/**
 * What a worker tells the run API about a task it serves (zod input as JSON
 * Schema, limits, retries, timeout). The SDK computes it from `task({...})`;
 * functions (keys, `retryOn` predicates, exponential delays) are described,
 * not sent.
 */
export const TaskDefinitionSchema = z.object({
  name: TaskNameSchema,
  description: z.string().max(4000).optional(),
  inputSchema: JsonSchemaObjectSchema.optional().describe(
    "The task's input as JSON Schema (draft 2020-12), from its zod schema: `POST /v1/runs` checks `parameters` against it. Absent when the task has no input schema or it has no JSON Schema form.",
  ),
  concurrency: ConcurrencyLimitSchema.optional(),
  rateLimit: RateLimitSchema.optional(),
  retries: z.number().int().nonnegative(),
  retryDelaySeconds: z
    .union([z.number().nonnegative(), z.array(z.number().nonnegative()), z.object({ exponential: z.object({ baseSeconds: z.number(), maxSeconds: z.number().optional(), jitter: z.number().optional() }) })])
    .optional(),
  timeoutSeconds: z.number().positive().optional(),
});
export type TaskDefinition = z.infer<typeof TaskDefinitionSchema>;

/**
 * A worker's registration, sent as a NATS request on
 * `Nats.registerSubject` at start and after each reconnect: every run API
 * replica stores it and answers {@link TaskRegistrationReplySchema}.
 */
export const TaskRegistrationSchema = z.object({
  workerId: z.string().min(1).max(253),
  tasks: z.array(TaskDefinitionSchema).min(1).max(1000),
});
export type TaskRegistration = z.infer<typeof TaskRegistrationSchema>;

export const TaskRegistrationReplySchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), registered: z.array(TaskNameSchema) }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type TaskRegistrationReply = z.infer<typeof TaskRegistrationReplySchema>;

/** A task's definition as the run API keeps it: the last one a worker registered. */
export const RegisteredTaskSchema = TaskDefinitionSchema.extend({
  registeredAt: isoDate.describe("When a worker last registered this definition."),
  registeredBy: z.string().describe("The worker that did."),
});
export type RegisteredTask = z.infer<typeof RegisteredTaskSchema>;
