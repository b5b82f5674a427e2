import type { Logger } from "pino";
import type { z } from "zod";
import { defaultClient, type OffloadClient } from "./client.js";
import { InputValidationError, ResultTimeoutError, ConfigError } from "./errors.js";
import { MAX_BATCH, TaskNameSchema, type Run, type RunState } from "./protocol/index.js";

const TASK_BRAND = Symbol.for("offload.task");

/** What a task function gets besides its input. */
export interface TaskContext {
  /** The run's id. */
  readonly runId: string;
  /** The task's name. */
  readonly task: string;
  /** 1 on the first try; counts redeliveries and retries. */
  readonly attempt: number;
  /** Aborted when the run times out or is cancelled, and when the worker must stop; pass it to fetch() and friends. */
  readonly signal: AbortSignal;
  /** A pino logger bound to this run (`runId`, `task`, `attempt`). */
  readonly log: Logger;
  /** The worker process running it. */
  readonly workerId: string;
}

/** Options of {@link task}. */
export interface TaskOptions<S extends z.ZodType> {
  /** The task's name: lowercase letters, digits, `-`, `_`. Workers and runs find the task by it; keep it stable. */
  name: string;
  /** The input schema. `delay()` checks input against it before sending, and the worker checks again before running. */
  input: S;
  /** A line about what the task does (shown by `GET /v1/tasks`). */
  description?: string;
  /** Abort the run's signal after this many seconds and fail it with `TimeoutError`. @defaultValue no limit */
  timeoutSeconds?: number;
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
}

/** Options of {@link Task.map}. */
export interface MapOptions {
  /** Runs are delayed (not awaited) in one batch call; the only mode there is, accepted for Prefect's spelling. @defaultValue true */
  deferred?: true;
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
  /** The run record, fresh from the run API. */
  status(): Promise<Run>;
  /** Waits for the run to finish and returns its result; throws `RunFailedError` / `RunCancelledError` if it did not complete. */
  result(options?: ResultOptions): Promise<O>;
}

/** A task: a named function with an input schema, runnable in the background with `delay()`. */
export interface Task<S extends z.ZodType = z.ZodType, O = unknown> {
  readonly name: string;
  readonly options: Readonly<TaskOptions<S>>;
  /** The function a worker runs. */
  readonly fn: (input: z.output<S>, ctx: TaskContext) => Promise<O> | O;
  /** Records a run of this task and dispatches it; resolves once the run API has it (not when it finishes). */
  delay(input: z.input<S>, options?: DelayOptions): Promise<RunHandle<O>>;
  /** Delays one run per input through a single batch call; handles come back in input order. */
  map(inputs: readonly z.input<S>[], options?: MapOptions): Promise<RunHandle<O>[]>;
  /** A handle for a run of this task made earlier (e.g. by id stored in a database). */
  handle(runId: string): RunHandle<O>;
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
  options: TaskOptions<S>,
  fn: (input: z.output<S>, ctx: TaskContext) => Promise<O> | O,
): Task<S, Awaited<O>> {
  const name = TaskNameSchema.safeParse(options.name);
  if (!name.success) throw new ConfigError(`task name "${options.name}" is invalid: ${name.error.issues[0]?.message}`);
  if (options.timeoutSeconds !== undefined && !(options.timeoutSeconds > 0)) {
    throw new ConfigError(`task "${options.name}": timeoutSeconds must be a positive number`);
  }
  const frozen = Object.freeze({ ...options });
  const client = (): OffloadClient => frozen.client ?? defaultClient();

  const validate = (input: unknown): unknown => {
    const parsed = frozen.input.safeParse(input);
    if (!parsed.success) {
      throw new InputValidationError(frozen.name, parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })));
    }
    return parsed.data;
  };

  const self: Task<S, Awaited<O>> = {
    name: frozen.name,
    options: frozen,
    fn: fn as Task<S, Awaited<O>>["fn"],
    async delay(input, delayOptions = {}) {
      const parameters = validate(input) as never;
      const run = await client().createRun({
        task: frozen.name,
        parameters,
        ...(delayOptions.idempotencyKey ? { idempotencyKey: delayOptions.idempotencyKey } : {}),
        ...scheduleOf(delayOptions),
      });
      return makeHandle<Awaited<O>>(client(), run.id, frozen.name);
    },
    async map(inputs) {
      const bodies = inputs.map((input) => ({ task: frozen.name, parameters: validate(input) as never }));
      const handles: RunHandle<Awaited<O>>[] = [];
      for (let i = 0; i < bodies.length; i += MAX_BATCH) {
        const runs = await client().createRuns(bodies.slice(i, i + MAX_BATCH));
        for (const run of runs) handles.push(makeHandle<Awaited<O>>(client(), run.id, frozen.name));
      }
      return handles;
    },
    handle(runId) {
      return makeHandle<Awaited<O>>(client(), runId, frozen.name);
    },
  };
  Object.defineProperty(self, TASK_BRAND, { value: true, enumerable: false });
  return Object.freeze(self);
}

/** True if `value` is a task made by {@link task} (from any copy of the SDK). */
export function isTask(value: unknown): value is Task {
  return typeof value === "object" && value !== null && TASK_BRAND in value;
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
export function makeHandle<O>(client: OffloadClient, id: string, taskName: string): RunHandle<O> {
  return {
    id,
    task: taskName,
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
  };
}

/** The states in which a run has not finished. */
export type OpenRunState = Exclude<RunState, "COMPLETED" | "FAILED" | "CANCELLED">;
