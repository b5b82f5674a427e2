/**
 * Calls a task's function for one try and says how the try ended. The
 * function gets validated input and a context whose signal is aborted when a
 * timeout, a cancel or the worker abandoning the run ends the try; each of
 * those ends it at once, whether or not the function heeds its signal, so a
 * stuck function never holds a run (or a stopping worker) hostage.
 */
import type { Logger } from "pino";
import { InputValidationError, ResultNotSerializableError, RunCancelledError, TaskTimeoutError } from "../errors.js";
import type { TaskMessage } from "../protocol/index.js";
import type { Task, TaskContext } from "../task.js";
import type { CancelWatch } from "./cancellations.js";
import { progressOf, type ProgressCoalescer } from "./progress.js";
import { errorOf, toJson, type Ending } from "./ending.js";
import type { RunInfo } from "./index.js";

/** One try to make. */
export interface Invocation {
  readonly task: Task;
  readonly message: TaskMessage;
  readonly info: RunInfo;
  /** The run's logger, given to the function as `ctx.log`. */
  readonly log: Logger;
  readonly workerId: string;
  /** Resolves when the worker gives the run up (stop() ran out of drain time). */
  readonly abandoned: Promise<void>;
  readonly cancel: CancelWatch;
  /** Where `ctx.progress(...)` reports go. */
  readonly progress: Pick<ProgressCoalescer, "report">;
}

/** The reason a run's signal is aborted when the worker stops before the run finished. */
class WorkerStoppingError extends Error {
  constructor() {
    super("the worker is stopping; the run will be redelivered");
    this.name = "WorkerStoppingError";
  }
}

export async function invoke({ task, message, info, log, workerId, abandoned, cancel, progress }: Invocation): Promise<Ending> {
  // Cancelled while RUNNING was being published: the function is not called at all.
  if (cancel.requested) return { kind: "cancelled" };
  let input = task.options.input.safeParse(message.parameters);
  // A run made without parameters may arrive as null; a schema that takes "nothing" means undefined.
  if (!input.success && message.parameters === null) {
    const none = task.options.input.safeParse(undefined);
    if (none.success) input = none;
  }
  if (!input.success) {
    const err = InputValidationError.fromZod(task.name, input.error);
    return { kind: "failed", error: { type: "InputValidationError", message: err.message }, thrown: err };
  }
  const controller = new AbortController();
  const ctx: TaskContext = {
    runId: info.runId,
    task: info.task,
    attempt: info.attempt,
    signal: controller.signal,
    log,
    workerId,
    // Checked here, in the task's own call, so a bad report throws where it was made.
    progress: (...args: unknown[]) => progress.report(progressOf(args)),
  };
  const timeoutSeconds = message.timeoutSeconds ?? task.options.timeoutSeconds;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Ending>((resolve) => {
    if (timeoutSeconds === undefined) return;
    timer = setTimeout(() => {
      const err = new TaskTimeoutError(timeoutSeconds);
      controller.abort(err);
      resolve({ kind: "failed", error: errorOf(err, { stack: false }), thrown: err });
    }, timeoutSeconds * 1000);
  });
  // Like a timeout, a cancel ends the run now, whether or not the function heeds its signal.
  const cancelledEnding = cancel.promise.then((): Ending => {
    controller.abort(new RunCancelledError(info.runId));
    return { kind: "cancelled" };
  });
  const abandonedEnding = abandoned.then((): Ending => ({ kind: "abandoned" }));
  const ran = Promise.resolve()
    .then(() => task.fn(input.data, ctx))
    .then(
      (value): Ending => {
        const json = toJson(value);
        if (json.ok) return { kind: "completed", value, json: json.text };
        const err = new ResultNotSerializableError(json.message);
        return { kind: "failed", error: errorOf(err, { stack: false }), thrown: err };
      },
      (err: unknown): Ending => ({ kind: "failed", error: errorOf(err), thrown: err }),
    );
  try {
    const ending = await Promise.race([ran, timedOut, abandonedEnding, cancelledEnding]);
    if (ending.kind === "abandoned") controller.abort(new WorkerStoppingError());
    return ending;
  } finally {
    clearTimeout(timer);
  }
}
