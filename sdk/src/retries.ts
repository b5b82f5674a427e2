import { z } from "zod";
import { ConfigError, isNonRetryableError, isOffloadError, isRetryAfterError } from "./errors.js";

/**
 * How long to wait before a retry, in seconds:
 * - a number: the same delay before every retry;
 * - a list: the delay before the 1st, 2nd, … retry; the last one repeats;
 * - `{ exponential: { baseSeconds, maxSeconds?, jitter? } }`: `baseSeconds × 2^(n-1)`
 *   before the n-th retry, capped at `maxSeconds`, then spread at random over
 *   `± jitter` of itself (0..1; e.g. 0.2 gives 80%–120%) and capped again.
 */
export type RetryDelay =
  | number
  | readonly number[]
  | { readonly exponential: { readonly baseSeconds: number; readonly maxSeconds?: number; readonly jitter?: number } };

/**
 * Which errors a run is retried on: a predicate given what the task threw
 * (a `TaskTimeoutError` for a timeout), or a list of error class names (an
 * error matches by its `name` or the name of any class it extends).
 */
export type RetryOn = ((error: unknown) => boolean) | readonly string[];

/** The retry settings of a task (a subset of its options). */
export interface RetrySettings {
  readonly retries?: number;
  readonly retryDelaySeconds?: RetryDelay;
  readonly retryOn?: RetryOn;
}

/** Most retries a task may ask for: enough for any backoff schedule, few enough to notice a typo. */
export const MAX_RETRIES = 1000;
/** Longest delay before a retry: the run API keeps the run `AWAITING_RETRY` that long. */
export const MAX_RETRY_DELAY_SECONDS = 7 * 24 * 3600;

const seconds = z.number().min(0).max(MAX_RETRY_DELAY_SECONDS);
const RetrySettingsSchema = z.object({
  retries: z.number().int().min(0).max(MAX_RETRIES).optional(),
  retryDelaySeconds: z
    .union([
      seconds,
      z.array(seconds).min(1, "give at least one delay"),
      z.strictObject({
        exponential: z
          .strictObject({
            baseSeconds: seconds.refine((n) => n > 0, "must be more than 0"),
            maxSeconds: seconds.optional(),
            jitter: z.number().min(0).max(1).optional(),
          })
          .refine((e) => e.maxSeconds === undefined || e.maxSeconds >= e.baseSeconds, "maxSeconds must be at least baseSeconds"),
      }),
    ])
    .optional(),
  retryOn: z
    .union([z.custom<(error: unknown) => boolean>((v) => typeof v === "function", "must be a function"), z.array(z.string().min(1)).min(1)])
    .optional(),
});

/** Checks a task's retry options; throws a {@link ConfigError} naming the task and the option. */
export function checkRetrySettings(task: string, settings: RetrySettings): void {
  const parsed = RetrySettingsSchema.safeParse({ retries: settings.retries, retryDelaySeconds: settings.retryDelaySeconds, retryOn: settings.retryOn });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`task "${task}": ${issue.path.join(".") || "retry options"}: ${issue.message}`);
  }
}

/**
 * Seconds to wait before retrying after try number `attempt` (1-based) failed.
 * `random` (0 ≤ r < 1) is injectable so that jitter can be tested.
 */
export function retryDelayFor(delay: RetryDelay | undefined, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, attempt);
  if (delay === undefined) return 0;
  if (typeof delay === "number") return delay;
  if (isDelayList(delay)) return delay[Math.min(n, delay.length) - 1] ?? 0;
  const { baseSeconds, maxSeconds = MAX_RETRY_DELAY_SECONDS, jitter = 0 } = delay.exponential;
  const cap = Math.min(maxSeconds, MAX_RETRY_DELAY_SECONDS);
  const plain = Math.min(cap, baseSeconds * 2 ** Math.min(n - 1, 64));
  const spread = plain * (1 + jitter * (2 * random() - 1));
  return Math.max(0, Math.min(cap, spread));
}

function isDelayList(delay: RetryDelay): delay is readonly number[] {
  return Array.isArray(delay);
}

/** What to do after a try failed. */
export type RetryDecision = { retry: false; reason: string } | { retry: true; delaySeconds: number };

// Errors that say the same thing on every try: retrying cannot help.
const NEVER_RETRIED = new Set(["OFFLOAD_NON_RETRYABLE", "OFFLOAD_INPUT", "OFFLOAD_RESULT_NOT_SERIALIZABLE"]);

/**
 * Whether try number `attempt` of a task with `settings`, which failed with
 * `error`, gets another try, and after how long. `NonRetryableError`, invalid
 * input and a result that is not JSON never do; a `RetryAfterError` does while
 * retries are left, after its own delay; any other error does while retries
 * are left and `retryOn` (default: every error) allows it.
 */
export function decideRetry(settings: RetrySettings, attempt: number, error: unknown, random?: () => number): RetryDecision {
  const retries = settings.retries ?? 0;
  if (isOffloadError(error) && NEVER_RETRIED.has(error.code)) {
    const name = (error as Error).name;
    return { retry: false, reason: isNonRetryableError(error) ? "the task threw NonRetryableError" : `${name} is never retried` };
  }
  if (attempt > retries) return { retry: false, reason: retries === 0 ? "the task has no retries" : `all ${retries} retries are used` };
  if (isRetryAfterError(error)) return { retry: true, delaySeconds: Math.min(error.retryAfterSeconds, MAX_RETRY_DELAY_SECONDS) };
  const on = settings.retryOn;
  if (on !== undefined) {
    let allowed: boolean;
    if (typeof on === "function") {
      try {
        allowed = on(error) === true;
      } catch (err) {
        return { retry: false, reason: `retryOn threw: ${String((err as Error)?.message ?? err)}` };
      }
    } else {
      const names = errorNames(error);
      allowed = on.some((n) => names.has(n));
    }
    if (!allowed) return { retry: false, reason: "retryOn does not retry this error" };
  }
  return { retry: true, delaySeconds: retryDelayFor(settings.retryDelaySeconds, attempt, random) };
}

/** The names an error answers to: its `name` and the name of every class in its prototype chain. */
export function errorNames(error: unknown): Set<string> {
  const names = new Set<string>();
  if (typeof error !== "object" || error === null) return names;
  const own = (error as { name?: unknown }).name;
  if (typeof own === "string" && own) names.add(own);
  for (let proto: unknown = Object.getPrototypeOf(error); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const ctor = (proto as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === "string" && ctor.name) names.add(ctor.name);
  }
  return names;
}
