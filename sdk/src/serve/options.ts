import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { natsUrls, parseEnv } from "../config.js";
import { ConfigError } from "../errors.js";
import { isTask, type Task } from "../task.js";
import type { RunLogLevel, ServeHooks, ServeOptions } from "./index.js";

/** Default of {@link ServeOptions.maxDeliver}. */
export const DEFAULT_MAX_DELIVER = 10;
/** Default of {@link ServeOptions.resultInlineLimitBytes}: 256 KiB. */
export const DEFAULT_RESULT_INLINE_LIMIT = 256 * 1024;

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const maxDeliver = z.number().int().refine((n) => n === -1 || n >= 1, "must be at least 1 (or -1 for no limit)");
const inlineLimit = z.number().int().min(0).max(64 * 1024 * 1024);

/** The environment `serve()` reads (options given in code take precedence). */
export const ServeEnvSchema = z.object({
  OFFLOAD_NATS_URL: natsUrls.default(["nats://127.0.0.1:4222"]),
  OFFLOAD_ACK_WAIT_SECONDS: z.coerce.number().min(1).default(30),
  OFFLOAD_LOG_LEVEL: z.enum(LEVELS).default("info"),
  OFFLOAD_MAX_DELIVER: z.coerce.number().pipe(maxDeliver).default(DEFAULT_MAX_DELIVER),
  OFFLOAD_RESULT_INLINE_LIMIT: z.coerce.number().pipe(inlineLimit).default(DEFAULT_RESULT_INLINE_LIMIT),
  OFFLOAD_RUN_LOG_LEVEL: z.enum(LEVELS).default("info"),
});
export type ServeEnv = z.infer<typeof ServeEnvSchema>;

const OptionsSchema = z.object({
  concurrency: z.number().int().min(1).max(10_000).default(4),
  natsUrl: z.union([natsUrls, z.array(z.string().min(1)).min(1)]).optional(),
  drainSeconds: z.number().min(0).default(30),
  ackWaitSeconds: z.number().min(1).optional(),
  workerId: z.string().min(1).max(256).optional(),
  maxDeliver: maxDeliver.optional(),
  resultInlineLimitBytes: inlineLimit.optional(),
  runLogLevel: z.enum(LEVELS).optional(),
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
}

export function compileOptions(tasks: readonly Task[], options: ServeOptions, env: NodeJS.ProcessEnv = process.env): CompiledOptions {
  const e = parseEnv(ServeEnvSchema, env, "serve()");
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
  });
}
