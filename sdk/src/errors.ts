import type { ErrorCode, RunError } from "./protocol/index.js";

// Brands survive two copies of the SDK in one app (instanceof would not).
const BRAND = Symbol.for("offload.error");

/** Base of every error the SDK throws. `code` is stable; match on it, or use the `isX` predicates. */
export class OffloadError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    Object.defineProperty(this, BRAND, { value: code, enumerable: false });
  }
}

/** True for any error thrown by the SDK, from whichever copy of it. */
export function isOffloadError(err: unknown): err is OffloadError {
  return typeof err === "object" && err !== null && BRAND in err;
}

/** Configuration (environment or options) is missing or malformed; the message names the variable. */
export class ConfigError extends OffloadError {
  constructor(message: string) {
    super("OFFLOAD_CONFIG", message);
  }
}

/** A task's input failed its schema; thrown by `delay()` before anything is sent. */
export class InputValidationError extends OffloadError {
  readonly issues: { path: string; message: string }[];
  constructor(task: string, issues: { path: string; message: string }[]) {
    super("OFFLOAD_INPUT", `invalid input for task "${task}": ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`);
    this.issues = issues;
  }

  /** The error for input that failed a task's zod schema (in delay() or in the worker). */
  static fromZod(task: string, error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): InputValidationError {
    return new InputValidationError(task, error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })));
  }
}

/** The run API answered with an error. `status` is the HTTP status, `code` the API's error code. */
export class ApiError extends OffloadError {
  readonly status: number;
  readonly issues: { path: string; message: string }[] | undefined;
  constructor(code: ErrorCode | string, status: number, message: string, issues?: { path: string; message: string }[]) {
    super(code, message);
    this.status = status;
    this.issues = issues;
  }
}

/** The run API could not be reached at all (connection refused, DNS, reset). Check OFFLOAD_API_URL. */
export class ApiUnreachableError extends OffloadError {
  constructor(url: string, cause: unknown) {
    super("OFFLOAD_API_UNREACHABLE", `cannot reach the run API at ${url}: ${String((cause as Error)?.message ?? cause)}; check OFFLOAD_API_URL`, { cause });
  }
}

/**
 * `run.result()` found the run `FAILED`. `runError` is the error the task threw
 * (its `type`, `message` and `stack` when the task threw an Error);
 * `remoteStack` is that stack again, where the task threw it on the worker.
 * This error's own `stack` stays the caller's, the `result()` call that found
 * the failure: both places are worth seeing.
 */
export class RunFailedError extends OffloadError {
  readonly runId: string;
  readonly runError: RunError;
  /** The task's stack trace on the worker (`runError.stack`), or undefined when the run recorded none. */
  readonly remoteStack: string | undefined;
  constructor(runId: string, runError: RunError) {
    super("OFFLOAD_RUN_FAILED", `run ${runId} failed: ${runError.type}: ${runError.message}`);
    this.runId = runId;
    this.runError = runError;
    this.remoteStack = runError.stack;
  }
}

/** `run.result()` found the run `CANCELLED`. */
export class RunCancelledError extends OffloadError {
  readonly runId: string;
  constructor(runId: string) {
    super("OFFLOAD_RUN_CANCELLED", `run ${runId} was cancelled`);
    this.runId = runId;
  }
}

/** `run.result({timeoutSeconds})` gave up waiting; the run goes on. */
export class ResultTimeoutError extends OffloadError {
  readonly runId: string;
  constructor(runId: string, seconds: number) {
    super("OFFLOAD_RESULT_TIMEOUT", `run ${runId} did not finish within ${seconds}s; it is still going: call result() again or check status()`);
    this.runId = runId;
  }
}

/** Thrown by task code: fail the run now, without the retries it has left (whatever `retryOn` says). */
export class NonRetryableError extends OffloadError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("OFFLOAD_NON_RETRYABLE", message, options);
  }
}

/**
 * Thrown by task code: retry this run after `retryAfterSeconds`, instead of the
 * task's `retryDelaySeconds`. It counts as a try: with no `retries` left the run
 * fails. The task's `retryOn` is not asked: the task asked for the retry itself.
 */
export class RetryAfterError extends OffloadError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number, options?: { cause?: unknown }) {
    super("OFFLOAD_RETRY_AFTER", message, options);
    this.retryAfterSeconds = Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0 ? retryAfterSeconds : 0;
  }
}

/** `cancelRun()` / `run.cancel()`: the run already finished `COMPLETED` or `FAILED`, so there is nothing to cancel (HTTP 409). */
export class RunFinishedError extends ApiError {
  readonly runId: string;
  constructor(runId: string, message: string) {
    super("OFFLOAD_RUN_FINISHED", 409, message);
    this.runId = runId;
  }
}

/** `retryRun()` / `run.retry()`: only a `FAILED` run can be retried (HTTP 409). */
export class RunNotRetryableError extends ApiError {
  readonly runId: string;
  constructor(runId: string, message: string) {
    super("OFFLOAD_RUN_NOT_RETRYABLE", 409, message);
    this.runId = runId;
  }
}

/** A task returned something that is not JSON (a BigInt, a function, a cycle); the run fails with this type and is not retried. */
export class ResultNotSerializableError extends OffloadError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("OFFLOAD_RESULT_NOT_SERIALIZABLE", message, options);
  }
}

/** The run exceeded its `timeoutSeconds`; its signal was aborted. */
export class TaskTimeoutError extends OffloadError {
  constructor(seconds: number) {
    super("OFFLOAD_TIMEOUT", `the run exceeded its timeout of ${seconds}s`);
    // The run's error type is `TimeoutError`, as users of Prefect and the DOM know it.
    this.name = "TimeoutError";
  }
}

/**
 * A task's `concurrency.key` or `rateLimit.key` function threw, or returned
 * something that is not a key (a non-empty string of at most 256
 * characters); thrown by `delay()` / `map()` before anything is sent.
 */
export class LimitKeyError extends OffloadError {
  readonly task: string;
  /** Which key function failed. */
  readonly limit: "concurrency" | "rateLimit";
  constructor(task: string, limit: "concurrency" | "rateLimit", problem: string, options?: { cause?: unknown }) {
    super("OFFLOAD_LIMIT_KEY", `task "${task}": ${limit}.key ${problem}; nothing was sent (fix the key function or the input)`, options);
    this.task = task;
    this.limit = limit;
  }
}

/** `getSchedule()`, `deleteSchedule()`, `task.unschedule()`: no schedule has this key in this namespace (HTTP 404). */
export class ScheduleNotFoundError extends ApiError {
  readonly key: string;
  constructor(key: string, message: string) {
    super("OFFLOAD_SCHEDULE_NOT_FOUND", 404, message);
    this.key = key;
  }
}

const hasCode = (code: string) => (err: unknown): boolean => isOffloadError(err) && err.code === code;
/** True if `err` is a {@link RunFailedError}. */
export const isRunFailedError = hasCode("OFFLOAD_RUN_FAILED") as (err: unknown) => err is RunFailedError;
/** True if `err` is a {@link RunCancelledError}. */
export const isRunCancelledError = hasCode("OFFLOAD_RUN_CANCELLED") as (err: unknown) => err is RunCancelledError;
/** True if `err` is a {@link NonRetryableError}. */
export const isNonRetryableError = hasCode("OFFLOAD_NON_RETRYABLE") as (err: unknown) => err is NonRetryableError;
/** True if `err` is a {@link RetryAfterError}. */
export const isRetryAfterError = hasCode("OFFLOAD_RETRY_AFTER") as (err: unknown) => err is RetryAfterError;
/** True if `err` is a {@link RunFinishedError}. */
export const isRunFinishedError = hasCode("OFFLOAD_RUN_FINISHED") as (err: unknown) => err is RunFinishedError;
/** True if `err` is a {@link RunNotRetryableError}. */
export const isRunNotRetryableError = hasCode("OFFLOAD_RUN_NOT_RETRYABLE") as (err: unknown) => err is RunNotRetryableError;
/** True if `err` is a {@link TaskTimeoutError} (a run's signal aborted by its timeout). */
export const isTaskTimeoutError = hasCode("OFFLOAD_TIMEOUT") as (err: unknown) => err is TaskTimeoutError;
/** True if `err` is a {@link LimitKeyError}. */
export const isLimitKeyError = hasCode("OFFLOAD_LIMIT_KEY") as (err: unknown) => err is LimitKeyError;
/** True if `err` is a {@link ScheduleNotFoundError}. */
export const isScheduleNotFoundError = hasCode("OFFLOAD_SCHEDULE_NOT_FOUND") as (err: unknown) => err is ScheduleNotFoundError;
/** True if `err` is an {@link ApiError}. */
export function isApiError(err: unknown): err is ApiError {
  return isOffloadError(err) && typeof (err as { status?: unknown }).status === "number";
}

/**
 * `ctx.progress(...)` was called with a value it cannot report (not a finite
 * number from 0 to 1, `done` above `total`, …); thrown in the task, at the
 * call. The run's earlier reports are kept.
 */
export class InvalidProgressError extends OffloadError {
  constructor(message: string) {
    super("OFFLOAD_PROGRESS", `ctx.progress(): ${message}`);
  }
}
