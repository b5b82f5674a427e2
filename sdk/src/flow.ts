/**
 * A task's flow options (`concurrency`, `rateLimit`) and a run's `priority`:
 * checked when the task is defined or the run delayed, and the limit keys a
 * run is counted under, computed from its input by the task's key functions.
 * The limits themselves are enforced by the run API, which learns them from
 * the workers' registration (serve/register.ts); the SDK only sends the keys.
 */
import { z } from "zod";
import { ConfigError, LimitKeyError } from "./errors.js";
import { LimitKeySchema, MAX_LIMIT, MAX_LIMIT_KEY, MAX_RATE_PERIOD_SECONDS, PRIORITY, PrioritySchema } from "./protocol/index.js";

/**
 * The `concurrency` option of a task: at most `limit` of its runs are
 * dispatched and unfinished at once, across every worker and run API replica
 * (per key, with `key`). Runs beyond it wait in the run API, `PENDING` with
 * `waitingFor` saying why, and hold no worker slot meanwhile.
 */
export interface ConcurrencyOptions<I = unknown> {
  /** Most runs at once (per key, with `key`): a whole number from 1 to 100000. */
  readonly limit: number;
  /**
   * The run's concurrency key, from its parsed input: `(input) => input.tenant`
   * gives every tenant its own `limit`, and runs of different keys take turns
   * (a tenant with 10,000 waiting runs does not starve one with 10). Must
   * return a non-empty string of at most 256 characters.
   * @defaultValue none: one limit for the whole task
   */
  readonly key?: (input: I) => string;
}

/**
 * The `rateLimit` option of a task: at most `limit` of its runs start in any
 * window of `periodSeconds` (per key, with `key`), across every worker and run
 * API replica. Runs beyond it wait in the run API, `PENDING` with `waitingFor`.
 */
export interface RateLimitOptions<I = unknown> {
  /** Most starts per period (per key, with `key`): a whole number from 1 to 100000. */
  readonly limit: number;
  /** The length of the sliding window, in seconds: more than 0, at most 86400 (a day). */
  readonly periodSeconds: number;
  /**
   * The run's rate-limit key, from its parsed input (e.g. `(input) => input.tenant`).
   * Must return a non-empty string of at most 256 characters.
   * @defaultValue none: one limit for the whole task
   */
  readonly key?: (input: I) => string;
}

/** The flow options of a task (a subset of its options). */
export interface FlowSettings<I = unknown> {
  readonly concurrency?: ConcurrencyOptions<I>;
  readonly rateLimit?: RateLimitOptions<I>;
}

const limitMessage = `must be a whole number from 1 to ${MAX_LIMIT}`;
const limit = z.number({ error: limitMessage }).int({ error: limitMessage }).min(1, { error: limitMessage }).max(MAX_LIMIT, { error: limitMessage });
const keyFunction = z.custom<(input: unknown) => string>((v) => typeof v === "function", "must be a function of the input that returns the key");
const periodMessage = `must be a number of seconds above 0, at most ${MAX_RATE_PERIOD_SECONDS} (a day)`;

const FlowSettingsSchema = z.object({
  concurrency: z.strictObject({ limit, key: keyFunction.optional() }, { error: "must be { limit, key? }" }).optional(),
  rateLimit: z
    .strictObject(
      {
        limit,
        periodSeconds: z.number({ error: periodMessage }).positive({ error: periodMessage }).max(MAX_RATE_PERIOD_SECONDS, { error: periodMessage }),
        key: keyFunction.optional(),
      },
      { error: "must be { limit, periodSeconds, key? }" },
    )
    .optional(),
});

/** Checks a task's `concurrency` and `rateLimit`; throws a {@link ConfigError} naming the task and the option. */
export function checkFlowSettings(task: string, settings: FlowSettings<never>): void {
  const parsed = FlowSettingsSchema.safeParse({ concurrency: settings.concurrency, rateLimit: settings.rateLimit });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const unknown = issue.code === "unrecognized_keys" ? ` (unknown: ${issue.keys.join(", ")})` : "";
    throw new ConfigError(`task "${task}": ${issue.path.join(".")}: ${issue.message}${unknown}`);
  }
}

/** The keys a run is counted under, as `POST /v1/runs` takes them. */
export interface LimitKeys {
  concurrencyKey?: string;
  rateLimitKey?: string;
}

/**
 * Calls the task's key functions with the run's parsed input. Throws a
 * {@link LimitKeyError} when one throws or returns something that is not a
 * key, so that `delay()` sends nothing for it.
 */
export function limitKeysOf(task: string, settings: FlowSettings<never>, input: unknown): LimitKeys {
  const keys: LimitKeys = {};
  const concurrencyKey = keyOf(task, "concurrency", settings.concurrency?.key, input);
  if (concurrencyKey !== undefined) keys.concurrencyKey = concurrencyKey;
  const rateLimitKey = keyOf(task, "rateLimit", settings.rateLimit?.key, input);
  if (rateLimitKey !== undefined) keys.rateLimitKey = rateLimitKey;
  return keys;
}

function keyOf(task: string, which: "concurrency" | "rateLimit", fn: ((input: never) => string) | undefined, input: unknown): string | undefined {
  if (fn === undefined) return undefined;
  let key: unknown;
  try {
    key = fn(input as never);
  } catch (err) {
    throw new LimitKeyError(task, which, `threw: ${String((err as Error)?.message ?? err)}`, { cause: err });
  }
  if (typeof key !== "string") throw new LimitKeyError(task, which, `returned ${describe(key)}, not a string`);
  const parsed = LimitKeySchema.safeParse(key);
  if (!parsed.success) {
    const why = key.length === 0 ? "an empty string" : key.length > MAX_LIMIT_KEY ? `a string of ${key.length} characters` : "a string it cannot store";
    throw new LimitKeyError(task, which, `returned ${why}: a key is a non-empty string of at most ${MAX_LIMIT_KEY} characters (${parsed.error.issues[0]!.message})`);
  }
  return key;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  if (typeof value === "function") return "a function";
  return `${typeof value} ${String(value)}`;
}

/**
 * Checks a run's `priority` (undefined: the default, 3); throws a
 * {@link ConfigError} saying what `where` accepts.
 */
export function checkPriority(where: string, priority: number | undefined): void {
  if (priority === undefined) return;
  if (!PrioritySchema.safeParse(priority).success) {
    throw new ConfigError(
      `${where}: priority must be a whole number from ${PRIORITY.first} (first) to ${PRIORITY.last} (last), default ${PRIORITY.default}; got ${JSON.stringify(priority) ?? String(priority)}`,
    );
  }
}
