import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { LOG_LEVELS, natsUrls, parseEnv } from "../config.js";
import { ConfigError } from "../errors.js";
import { isTask, type Task } from "../task.js";
import type { RunLogLevel, ServeHooks, ServeOptions } from "./index.js";

/** Default of {@link ServeOptions.ackWaitSeconds}. */
export const DEFAULT_ACK_WAIT_SECONDS = 30;
/** Default of {@link ServeOptions.maxDeliver}. */
export const DEFAULT_MAX_DELIVER = 10;
/** Default of {@link ServeOptions.resultInlineLimitBytes}: 256 KiB. */
export const DEFAULT_RESULT_INLINE_LIMIT = 256 * 1024;
/** Default of {@link ServeOptions.runningEventDelayMs}. */
export const DEFAULT_RUNNING_EVENT_DELAY_MS = 100;

const maxDeliver = z.number().int().refine((n) => n === -1 || n >= 1, "must be at least 1 (or -1 for no limit)");
const inlineLimit = z.number().int().min(0).max(64 * 1024 * 1024);
// Past the ack wait's scale a delay would only hide runs: a minute is plenty.
const runningDelay = z.number().int().min(0).max(60_000);
const bool = z.enum(["true", "false", "1", "0"], { error: "must be true or false" }).transform((v) => v === "true" || v === "1");

/** The environment `serve()` reads (options given in code take precedence); `offload-worker` extends it. */
export const ServeEnvSchema = z.object({
  /** NATS servers, comma-separated. @defaultValue nats://127.0.0.1:4222 */
  OFFLOAD_NATS_URL: natsUrls.default(["nats://127.0.0.1:4222"]),
  /** Seconds before an unacked run goes to another worker. @defaultValue 30 */
  OFFLOAD_ACK_WAIT_SECONDS: z.coerce.number().min(1).default(DEFAULT_ACK_WAIT_SECONDS),
  /** pino level. @defaultValue info */
  OFFLOAD_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Deliveries of one task message before JetStream gives up on it (the run fails `MaxDeliveriesExceeded`); -1: no limit. @defaultValue 10 */
  OFFLOAD_MAX_DELIVER: z.coerce.number().pipe(maxDeliver).default(DEFAULT_MAX_DELIVER),
  /** Results larger than this many bytes (as JSON) go to the object store instead of into the event. @defaultValue 262144 */
  OFFLOAD_RESULT_INLINE_LIMIT: z.coerce.number().pipe(inlineLimit).default(DEFAULT_RESULT_INLINE_LIMIT),
  /** Lines runs log through `ctx.log` at this level or above are kept with the run. @defaultValue info */
  OFFLOAD_RUN_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Milliseconds a run runs before its RUNNING event is sent (shorter runs send only their outcome); 0: at once. @defaultValue 100 */
  OFFLOAD_RUNNING_EVENT_DELAY_MS: z.coerce.number().pipe(runningDelay).default(DEFAULT_RUNNING_EVENT_DELAY_MS),
  /** Events ready at the same time go as one batch message; false for a run API older than batches. @defaultValue true */
  OFFLOAD_BATCH_EVENTS: bool.default(true),
});

// The variable each option stands in for: one given in code is not read (nor checked) from the environment.
const ENV_OF_OPTION = {
  natsUrl: "OFFLOAD_NATS_URL",
  ackWaitSeconds: "OFFLOAD_ACK_WAIT_SECONDS",
  logger: "OFFLOAD_LOG_LEVEL",
  maxDeliver: "OFFLOAD_MAX_DELIVER",
  resultInlineLimitBytes: "OFFLOAD_RESULT_INLINE_LIMIT",
  runLogLevel: "OFFLOAD_RUN_LOG_LEVEL",
  runningEventDelayMs: "OFFLOAD_RUNNING_EVENT_DELAY_MS",
  batchEvents: "OFFLOAD_BATCH_EVENTS",
} as const satisfies Partial<Record<keyof ServeOptions, keyof z.infer<typeof ServeEnvSchema>>>;
export type ServeEnv = z.infer<typeof ServeEnvSchema>;

const OptionsSchema = z.object({
  concurrency: z.number().int().min(1).max(10_000).default(4),
  natsUrl: z.union([natsUrls, z.array(z.string().min(1)).min(1)]).optional(),
  drainSeconds: z.number().min(0).default(30),
  ackWaitSeconds: z.number().min(1).optional(),
  workerId: z.string().min(1).max(256).optional(),
  maxDeliver: maxDeliver.optional(),
  resultInlineLimitBytes: inlineLimit.optional(),
  runLogLevel: z.enum(LOG_LEVELS).optional(),
  runningEventDelayMs: runningDelay.optional(),
  batchEvents: z.boolean().optional(),
});

/** serve()'s options with defaults filled in and checked. */
export interface CompiledOptions {
  readonly tasks: readonly Task[];
  readonly concurrency: number;
  readonly servers: string[];
  readonly drainSeconds: number;
  readonly ackWaitSeconds: number;
  readonly workerId: string;
  readonly logger: Logger;
  readonly hooks: ServeHooks;
  readonly maxDeliver: number;
  readonly resultInlineLimitBytes: number;
  readonly runLogLevel: RunLogLevel;
  readonly runningEventDelayMs: number;
  readonly batchEvents: boolean;
}

export function compileOptions(tasks: readonly Task[], options: ServeOptions, env: NodeJS.ProcessEnv = process.env): CompiledOptions {
  const unshadowed: NodeJS.ProcessEnv = { ...env };
  for (const [option, variable] of Object.entries(ENV_OF_OPTION)) if (options[option as keyof ServeOptions] !== undefined) delete unshadowed[variable];
  const e = parseEnv(ServeEnvSchema, unshadowed, "serve()");
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new ConfigError(`serve(): invalid options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const o = parsed.data;
  if (!Array.isArray(tasks) || tasks.length === 0) throw new ConfigError("serve(): give at least one task");
  const names = new Set<string>();
  for (const t of tasks) {
    if (!isTask(t)) throw new ConfigError("serve(): every item must be a task made by task()");
    if (names.has(t.name)) throw new ConfigError(`serve(): task "${t.name}" is given twice`);
    names.add(t.name);
  }
  return Object.freeze({
    tasks: Object.freeze([...tasks]),
    concurrency: o.concurrency,
    servers: o.natsUrl ?? e.OFFLOAD_NATS_URL,
    drainSeconds: o.drainSeconds,
    ackWaitSeconds: o.ackWaitSeconds ?? e.OFFLOAD_ACK_WAIT_SECONDS,
    workerId: o.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
    logger: options.logger ?? pino({ name: "offload", level: e.OFFLOAD_LOG_LEVEL }),
    hooks: options.hooks ?? {},
    maxDeliver: o.maxDeliver ?? e.OFFLOAD_MAX_DELIVER,
    resultInlineLimitBytes: o.resultInlineLimitBytes ?? e.OFFLOAD_RESULT_INLINE_LIMIT,
    runLogLevel: o.runLogLevel ?? e.OFFLOAD_RUN_LOG_LEVEL,
    runningEventDelayMs: o.runningEventDelayMs ?? e.OFFLOAD_RUNNING_EVENT_DELAY_MS,
    batchEvents: o.batchEvents ?? e.OFFLOAD_BATCH_EVENTS,
  });
}
