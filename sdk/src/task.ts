import type { Logger } from "pino";
import type { z } from "zod";
import { cacheKeyOf, checkCacheOptions, type CacheOptions } from "./cache.js";
import { defaultClient, type OffloadClient, type RunLogs } from "./client.js";
import { taskDefinition } from "./definition.js";
import { InputValidationError, ResultTimeoutError, ConfigError } from "./errors.js";
import { checkFlowSettings, checkPriority, limitKeysOf, type ConcurrencyOptions, type RateLimitOptions } from "./flow.js";
import {
  MAX_BATCH,
  MAX_TIMEOUT_SECONDS,
  PutScheduleBodySchema,
  ScheduleKeySchema,
  TaskDefinitionSchema,
  TaskNameSchema,
  type ConcurrencyPolicy,
  type Json,
  type PutScheduleBody,
  type Run,
  type Schedule,
  type TaskDefinition,
  type TraceContext,
} from "./protocol/index.js";
import { checkRetrySettings, type RetryDelay, type RetryOn } from "./retries.js";
import type { ProgressReport } from "./serve/progress.js";
import { activeTraceContext } from "./tracing/context.js";

export type { CacheOptions, CachePolicyPart } from "./cache.js";
export type { ConcurrencyOptions, RateLimitOptions } from "./flow.js";
export type { RetryDelay, RetryOn } from "./retries.js";
export type { ProgressReport } from "./serve/progress.js";

const TASK_BRAND = Symbol.for("offload.task");

/** What a task function gets besides its input. */
export interface TaskContext {
  /** The run's id. */
  readonly runId: string;
  /** The task's name. */
  readonly task: string;
  /** 1 on the first try; counts redeliveries and retries. */
  readonly attempt: number;
  /**
   * Aborted when the run times out (reason: a `TaskTimeoutError`), is
   * cancelled (a `RunCancelledError`), or when the worker must stop; pass it
   * to fetch() and friends. The run ends then whether or not the function heeds it.
   */
  readonly signal: AbortSignal;
  /**
   * A pino logger bound to this run (`runId`, `task`, `attempt`). Lines at
   * info and above (the worker's `runLogLevel`) are also kept with the run:
   * `run.logs()`, `GET /v1/runs/:id/logs`.
   */
  readonly log: Logger;
  /** The worker process running it. */
  readonly workerId: string;
  /**
   * Reports how far the run is: `ctx.progress(0.4, "resized 4 of 10")`, or
   * `ctx.progress({ done: 4, total: 10, message: "resized 4 of 10" })`.
   * Stored on the run (`run.status()` and `GET /v1/runs/:id` show it as
   * `progress`) and sent on its events stream as `event: progress`.
   *
   * Call it as often as you like: reports are coalesced to at most one
   * message every 250 ms per run (the first at once, then the latest), and the
   * last one is always stored, before the run's outcome. It returns at once
   * and never waits for NATS. A value outside 0..1, `done` above `total` or a
   * non-finite number throws an `InvalidProgressError` here; a report made
   * after the run ended is ignored. A new try (a retry, a redelivery) starts
   * without progress.
   */
  progress(value: number, message?: string): void;
  progress(report: ProgressReport): void;
}

/** What a task's `onCompletion` and `onFailure` hooks are told about the run. */
export interface TaskRunInfo {
  readonly runId: string;
  readonly task: string;
  /** The try that ended the run (1 on the first). */
  readonly attempt: number;
  readonly workerId: string;
  /** The run's parameters as sent (not parsed: on invalid input they are what failed). */
  readonly parameters: Json;
  /** The run's logger: what the hook logs goes to the run's log too. */
  readonly log: Logger;
}

/** Options of {@link task}. Checked once by `task()` (a bad one throws a `ConfigError`), then frozen. */
export interface TaskOptions<S extends z.ZodType, O = unknown> {
  /** The task's name: lowercase letters, digits, `-`, `_`. Workers and runs find the task by it; keep it stable. */
  name: string;
  /** The input schema. `delay()` checks input against it before sending, and the worker checks again before running. */
  input: S;
  /** A line about what the task does (shown by `GET /v1/tasks`); at most 4000 characters. */
  description?: string;
  /**
   * At most `limit` runs of this task at once (per key, with `key`), across
   * every worker and run API replica: `{ limit: 2, key: (input) => input.tenant }`.
   * Runs beyond it wait in the run API (`PENDING`, with `waitingFor` saying
   * why) without holding a worker slot, and start as slots free up, by
   * `priority`, taking turns across keys. The run API learns the limit when a
   * worker serving the task registers it (`serve()` does at start).
   * See {@link ConcurrencyOptions}.
   * @defaultValue no limit: runs are dispatched at once
   */
  concurrency?: ConcurrencyOptions<z.output<S>>;
  /**
   * At most `limit` runs of this task start per `periodSeconds` (per key, with
   * `key`), across every worker and run API replica:
   * `{ limit: 100, periodSeconds: 60, key: (input) => input.tenant }`. Runs
   * beyond it wait in the run API like those held by `concurrency`.
   * See {@link RateLimitOptions}.
   * @defaultValue no limit
   */
  rateLimit?: RateLimitOptions<z.output<S>>;
  /**
   * Abort the run's signal after this many seconds and fail the try with
   * `TimeoutError` (retried like any other error). The worker frees the run's
   * slot at once, even if the function ignores its signal.
   * `delay(input, { timeoutSeconds })` overrides it per run.
   * @defaultValue no limit
   */
  timeoutSeconds?: number;
  /**
   * How many times a failed run is tried again (so at most `retries + 1`
   * tries). Between tries the run is `AWAITING_RETRY`; the run API dispatches
   * it again once the delay is over. A worker that died mid-run also uses up a try.
   * @defaultValue 0
   */
  retries?: number;
  /**
   * Seconds to wait before each retry: a number, a list (the delay before the
   * 1st, 2nd, … retry; the last repeats) or `{ exponential: { baseSeconds,
   * maxSeconds?, jitter? } }`. A `RetryAfterError` thrown by the task sets its
   * own delay. See {@link RetryDelay}.
   * @defaultValue 0
   */
  retryDelaySeconds?: RetryDelay;
  /**
   * Which errors are retried: a predicate given what the task threw (a
   * `TaskTimeoutError` for a timeout), or a list of error class names (matched
   * by `name` and the classes the error extends). `NonRetryableError`, invalid
   * input (`InputValidationError`) and a result that is not JSON
   * (`ResultNotSerializableError`) are never retried, whatever it says.
   * @defaultValue every error but those three
   */
  retryOn?: RetryOn;
  /**
   * Serve a run from an earlier completed run with the same cache key instead
   * of running it (the run is `COMPLETED` with `cached: true` and never reaches
   * a worker). `delay()` computes the key from the policy: the sha256 of the
   * task name and the input's canonical JSON and/or the function's source.
   * See {@link CacheOptions}.
   * @defaultValue no caching
   */
  cache?: CacheOptions<z.output<S>>;
  /**
   * Called in the worker once a run is `COMPLETED` (its event accepted by
   * JetStream), with the value the task returned. What it throws is logged and
   * changes nothing; the worker's drain waits for it. Not called for cached runs.
   * (TypeScript types `result` from the function's return type when the
   * function's parameter is annotated; otherwise it is `unknown`.)
   * @defaultValue none
   */
  onCompletion?(run: TaskRunInfo, result: O): void | Promise<void>;
  /**
   * Called in the worker once a run is `FAILED` for good (not when a retry is
   * coming), with the error that failed the last try. What it throws is
   * logged and changes nothing. @defaultValue none
   */
  onFailure?(run: TaskRunInfo, error: Error): void | Promise<void>;
  /** The client `delay()` and `map()` use. @defaultValue {@link defaultClient}, built from the environment */
  client?: OffloadClient;
}

/** Options of {@link Task.delay}. */
export interface DelayOptions {
  /** A second `delay()` with the same key returns the first run instead of making a new one. */
  idempotencyKey?: string;
  /** Do not start the run before this time. */
  scheduledAt?: Date;
  /** Do not start the run before this many seconds from now. */
  delaySeconds?: number;
  /** This run's timeout, instead of the task's `timeoutSeconds`. @defaultValue the task's */
  timeoutSeconds?: number;
  /**
   * 1 (first) … 5 (last). Among this task's runs waiting for a `concurrency`
   * or `rateLimit` slot, lower numbers start first. A task without limits
   * dispatches every run at once, in arrival order, so priority changes
   * nothing for it: give it `concurrency: { limit: <your workers' capacity> }`
   * to have priorities (and turns across keys) apply.
   * @defaultValue 3
   */
  priority?: number;
}

/** Options of {@link Task.map}. */
export interface MapOptions {
  /** Runs are delayed (not awaited) in one batch call; the only mode there is, accepted for Prefect's spelling. @defaultValue true */
  deferred?: true;
  /** The priority of every run (see {@link DelayOptions.priority}). @defaultValue 3 */
  priority?: number;
}

/** Options of {@link Task.schedule}. */
export interface ScheduleOptions {
  /**
   * The schedule's key, unique in its namespace (letters, digits, `.`, `_`,
   * `:`, `-`): putting a schedule with the same key replaces it, and
   * {@link Task.unschedule} removes it by it.
   */
  key: string;
  /** The IANA time zone the cron expression is read in, e.g. `Europe/Paris`. @defaultValue UTC */
  timeZone?: string;
  /**
   * What to do when a time comes while the run it started last has not
   * finished, as a Kubernetes CronJob: `Allow` starts the next anyway,
   * `Forbid` skips this time, `Replace` cancels the unfinished run first.
   * @defaultValue "Allow"
   */
  concurrencyPolicy?: ConcurrencyPolicy;
  /** True: start no runs until it is put again with `suspend: false` (times passed meanwhile are missed). @defaultValue false */
  suspend?: boolean;
  /**
   * A time missed while the run API was down still fires if at most this
   * many seconds late; older ones are skipped.
   * @defaultValue unset: the latest missed time fires, once
   */
  startingDeadlineSeconds?: number;
  /** The priority of the runs it starts (see {@link DelayOptions.priority}). @defaultValue 3 */
  priority?: number;
  /** The namespace of the schedule and its runs. @defaultValue as for `delay()`: the caller's own */
  namespace?: string;
}

/** Options of {@link RunHandle.result}. */
export interface ResultOptions {
  /** Give up (throw {@link ResultTimeoutError}) after this many seconds; the run goes on. @defaultValue wait until the run finishes */
  timeoutSeconds?: number;
}

/** A delayed run: its id and ways to follow it. */
export interface RunHandle<O> {
  readonly id: string;
  readonly task: string;
  /**
   * What the run API said it could not check when it recorded the run, e.g.
   * `no worker has registered task "x" yet: its parameters were not checked
   * and its limits are not known`. Empty when nothing (and for a handle made
   * by {@link Task.handle}). The run was recorded either way.
   */
  readonly warnings: readonly string[];
  /**
   * The run record, fresh from the run API: state, attempts, times, error, and
   * `progress` (the task's last `ctx.progress(...)` report, once it made one).
   */
  status(): Promise<Run>;
  /** Waits for the run to finish and returns its result; throws `RunFailedError` / `RunCancelledError` if it did not complete. */
  result(options?: ResultOptions): Promise<O>;
  /**
   * Cancels the run: one not started yet is `CANCELLED` at once; a running one
   * has its signal aborted and becomes `CANCELLED` when its worker says so.
   * Resolves with the run as the API answered. Throws `RunFinishedError` if it already completed or failed.
   */
  cancel(): Promise<Run>;
  /** Runs a `FAILED` run again under the same id (`attempts` counts on). Throws `RunNotRetryableError` for any other state. */
  retry(): Promise<Run>;
  /** What the run logged through `ctx.log` (every try, oldest first). */
  logs(): Promise<RunLogs>;
  /**
   * Follows the run live (server-sent events): yields it now and after each
   * change of state, ending once it is `COMPLETED`, `FAILED` or `CANCELLED`.
   * `for await (const r of run.watch()) console.log(r.state)`.
   */
  watch(options?: { signal?: AbortSignal }): AsyncGenerator<Run>;
}

/** A task: a named function with an input schema, runnable in the background with `delay()`. */
export interface Task<S extends z.ZodType = z.ZodType, O = unknown> {
  readonly name: string;
  readonly options: Readonly<TaskOptions<S, O>>;
  /** The function a worker runs. */
  readonly fn: (input: z.output<S>, ctx: TaskContext) => Promise<O> | O;
  /** Records a run of this task and dispatches it; resolves once the run API has it (not when it finishes). */
  delay(input: z.input<S>, options?: DelayOptions): Promise<RunHandle<O>>;
  /** Delays one run per input through a single batch call; handles come back in input order. */
  map(inputs: readonly z.input<S>[], options?: MapOptions): Promise<RunHandle<O>[]>;
  /** A handle for a run of this task made earlier (e.g. by id stored in a database). */
  handle(runId: string): RunHandle<O>;
  /**
   * The task as data, as `serve()` registers it with the run API: its input
   * as JSON Schema (absent when zod cannot convert it), limits (`keyed: true`
   * when a key function is given), retries, retry delays, timeout and description.
   */
  definition(): TaskDefinition;
  /**
   * Runs this task on a cron schedule, kept by the run API
   * (`PUT /v1/schedules/:key`): a cron expression of five fields
   * (`"0 3 * * *"`: 03:00 every day), or six with seconds first; each time fires one run with `input`, across every API
   * replica. The input is checked against the task's schema first. Putting
   * the same `key` again replaces the schedule. Resolves with the schedule as
   * stored (`nextScheduleTime` …); an unreadable cron expression or time zone
   * rejects with an `ApiError` `OFFLOAD_INVALID_SCHEDULE`.
   *
   * The task's concurrency and rate-limit keys are computed here from
   * `input` (as `delay()` would) and stored with the schedule: every run it
   * starts counts under them.
   */
  schedule(cron: string, input: z.input<S>, options: ScheduleOptions): Promise<Schedule>;
  /** Removes the schedule `key` (`DELETE /v1/schedules/:key`); rejects with `ScheduleNotFoundError` if there is none. */
  unschedule(key: string, options?: { namespace?: string }): Promise<void>;
}

/**
 * Defines a task.
 *
 * ```ts
 * export const resize = task({ name: "resize-image", input: z.object({ url: z.url() }) }, async (input, ctx) => ...);
 * const run = await resize.delay({ url });
 * ```
 */
export function task<S extends z.ZodType, O>(
  options: TaskOptions<S, NoInfer<Awaited<O>>>,
  fn: (input: z.output<S>, ctx: TaskContext) => Promise<O> | O,
): Task<S, Awaited<O>> {
  const name = TaskNameSchema.safeParse(options.name);
  if (!name.success) throw new ConfigError(`task name "${options.name}" is invalid: ${name.error.issues[0]?.message}`);
  if (typeof fn !== "function") throw new ConfigError(`task "${options.name}": the second argument must be the task's function`);
  checkTimeout(`task "${options.name}"`, options.timeoutSeconds);
  checkRetrySettings(options.name, options);
  checkFlowSettings(options.name, options);
  if (options.description !== undefined && !TaskDefinitionSchema.shape.description.safeParse(options.description).success) {
    throw new ConfigError(`task "${options.name}": description must be a string of at most 4000 characters`);
  }
  if (options.cache !== undefined) checkCacheOptions(options.name, options.cache);
  for (const hook of ["onCompletion", "onFailure"] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== "function") throw new ConfigError(`task "${options.name}": ${hook} must be a function`);
  }
  const frozen = Object.freeze({
    ...options,
    ...(options.cache ? { cache: Object.freeze({ ...options.cache, ...(options.cache.policy ? { policy: Object.freeze([...options.cache.policy]) } : {}) }) } : {}),
    ...(Array.isArray(options.retryDelaySeconds) ? { retryDelaySeconds: Object.freeze([...(options.retryDelaySeconds as number[])]) } : {}),
    ...(Array.isArray(options.retryOn) ? { retryOn: Object.freeze([...(options.retryOn as string[])]) } : {}),
    ...(options.concurrency ? { concurrency: Object.freeze({ ...options.concurrency }) } : {}),
    ...(options.rateLimit ? { rateLimit: Object.freeze({ ...options.rateLimit }) } : {}),
  }) as Readonly<TaskOptions<S, Awaited<O>>>;
  const client = (): OffloadClient => frozen.client ?? defaultClient();
  let definition: TaskDefinition | undefined;

  const validate = (input: unknown): unknown => {
    const parsed = frozen.input.safeParse(input);
    if (!parsed.success) {
      throw InputValidationError.fromZod(frozen.name, parsed.error);
    }
    return parsed.data;
  };
  // What delay() and map() send for a validated input: its cache key, with the task's cache settings.
  const cacheFields = (parameters: unknown): { cacheKey?: string; cacheExpiresInSeconds?: number } => {
    if (!frozen.cache) return {};
    const cacheKey = cacheKeyOf(frozen.name, fn, frozen.cache as CacheOptions<never>, parameters);
    return { cacheKey, ...(frozen.cache.expiresInSeconds !== undefined ? { cacheExpiresInSeconds: frozen.cache.expiresInSeconds } : {}) };
  };
  // The caller's active span, if any: the worker's span for the run continues its trace.
  const traceFields = async (): Promise<{ traceContext?: TraceContext }> => {
    const traceContext = await activeTraceContext();
    return traceContext ? { traceContext } : {};
  };

  const self: Task<S, Awaited<O>> = {
    name: frozen.name,
    options: frozen,
    fn: fn as Task<S, Awaited<O>>["fn"],
    async delay(input, delayOptions = {}) {
      const parameters = validate(input) as never;
      checkTimeout("delay()", delayOptions.timeoutSeconds);
      checkPriority("delay()", delayOptions.priority);
      const run = await client().createRun({
        task: frozen.name,
        parameters,
        ...(delayOptions.idempotencyKey ? { idempotencyKey: delayOptions.idempotencyKey } : {}),
        ...scheduleOf(delayOptions),
        ...(delayOptions.timeoutSeconds !== undefined ? { timeoutSeconds: delayOptions.timeoutSeconds } : {}),
        ...(delayOptions.priority !== undefined ? { priority: delayOptions.priority } : {}),
        ...limitKeysOf(frozen.name, frozen, parameters),
        ...cacheFields(parameters),
        ...(await traceFields()),
      });
      return makeHandle<Awaited<O>>(client(), run.id, frozen.name, run.warnings);
    },
    async map(inputs, mapOptions = {}) {
      checkPriority("map()", mapOptions.priority);
      const priority = mapOptions.priority !== undefined ? { priority: mapOptions.priority } : {};
      const traced = await traceFields();
      // Every body (keys included) is made before the first call: a bad input or key sends nothing.
      const bodies = inputs.map((input) => {
        const parameters = validate(input) as never;
        return { task: frozen.name, parameters, ...priority, ...limitKeysOf(frozen.name, frozen, parameters), ...cacheFields(parameters), ...traced };
      });
      const handles: RunHandle<Awaited<O>>[] = [];
      for (let i = 0; i < bodies.length; i += MAX_BATCH) {
        const batch = await client().createRunsBatch(bodies.slice(i, i + MAX_BATCH));
        for (const run of batch.runs) handles.push(makeHandle<Awaited<O>>(client(), run.id, frozen.name, batch.warnings));
      }
      return handles;
    },
    handle(runId) {
      return makeHandle<Awaited<O>>(client(), runId, frozen.name);
    },
    definition() {
      definition ??= taskDefinition(frozen);
      return structuredClone(definition);
    },
    async schedule(cron, input, scheduleOptions) {
      const parameters = validate(input) as never;
      const { key, ...rest } = scheduleOptions ?? ({} as ScheduleOptions);
      if (!ScheduleKeySchema.safeParse(key).success) {
        throw new ConfigError(`schedule(): key ${JSON.stringify(key)} is invalid: give a key of letters, digits, '.', '_', ':' and '-' (at most 300), starting with a letter or digit`);
      }
      checkPriority("schedule()", rest.priority);
      // The keys come from the one input every run of the schedule gets: computed once, here, as delay() would.
      const body: PutScheduleBody = { task: frozen.name, schedule: cron, parameters, ...limitKeysOf(frozen.name, frozen, parameters), ...definedOnly(rest) };
      const checked = PutScheduleBodySchema.safeParse(body);
      if (!checked.success) {
        const issue = checked.error.issues[0]!;
        throw new ConfigError(`schedule(): ${issue.path.join(".") || "options"}: ${issue.message}`);
      }
      return client().putSchedule(key, body);
    },
    async unschedule(key, unscheduleOptions = {}) {
      await client().deleteSchedule(key, unscheduleOptions);
    },
  };
  Object.defineProperty(self, TASK_BRAND, { value: true, enumerable: false });
  return Object.freeze(self);
}

function checkTimeout(where: string, seconds: number | undefined): void {
  if (seconds !== undefined && !(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS)) {
    throw new ConfigError(`${where}: timeoutSeconds must be a positive number of seconds, at most ${MAX_TIMEOUT_SECONDS} (a week)`);
  }
}

/** True if `value` is a task made by {@link task} (from any copy of the SDK). */
export function isTask(value: unknown): value is Task {
  return typeof value === "object" && value !== null && TASK_BRAND in value;
}

// The options that were given, so that the body carries no `key: undefined` the run API would refuse.
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function scheduleOf(options: DelayOptions): { scheduledAt?: string } {
  if (options.scheduledAt && options.delaySeconds !== undefined) {
    throw new ConfigError("delay(): give scheduledAt or delaySeconds, not both");
  }
  if (options.scheduledAt) return { scheduledAt: options.scheduledAt.toISOString() };
  if (options.delaySeconds !== undefined) return { scheduledAt: new Date(Date.now() + options.delaySeconds * 1000).toISOString() };
  return {};
}

/** Builds a handle to follow a run by id. */
export function makeHandle<O>(client: OffloadClient, id: string, taskName: string, warnings: readonly string[] = []): RunHandle<O> {
  return {
    id,
    task: taskName,
    warnings: Object.freeze([...warnings]),
    status: () => client.getRun(id),
    async result(options = {}) {
      const limit = options.timeoutSeconds ?? Number.POSITIVE_INFINITY;
      const deadline = Date.now() + limit * 1000;
      for (;;) {
        const left = (deadline - Date.now()) / 1000;
        const res = await client.getResult(id, Math.max(0, Math.min(30, left)));
        if (res.done) return res.result as O;
        if (Date.now() >= deadline) throw new ResultTimeoutError(id, limit);
      }
    },
    cancel: () => client.cancelRun(id),
    retry: () => client.retryRun(id),
    logs: () => client.getLogs(id),
    watch: (options) => client.watchRun(id, options),
  };
}

