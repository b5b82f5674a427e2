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
import type { Trigger } from "./trigger.js";

/** One try to make. */
export interface Invocation {
  readonly task: Task;
  readonly message: TaskMessage;
  readonly info: RunInfo;
  /** The run's logger, given to the function as `ctx.log` (made on first use: most tasks never log). */
  readonly log: () => Logger;
  readonly workerId: string;
  /** Fires when the worker gives the run up (stop() ran out of drain time). */
  readonly abandoned: Trigger;
  readonly cancel: CancelWatch;
  /** Where `ctx.progress(...)` reports go (made on first use). */
  readonly progress: () => Pick<ProgressCoalescer, "report">;
}

/** The reason a run's signal is aborted when the worker stops before the run finished. */
class WorkerStoppingError extends Error {
  constructor() {
    super("the worker is stopping; the run will be redelivered");
    this.name = "WorkerStoppingError";
  }
}

export function invoke({ task, message, info, log, workerId, abandoned, cancel, progress }: Invocation): Promise<Ending> {
  // Cancelled while RUNNING was being published: the function is not called at all.
  if (cancel.requested) return Promise.resolve({ kind: "cancelled" });
  let input = task.options.input.safeParse(message.parameters);
  // A run made without parameters may arrive as null; a schema that takes "nothing" means undefined.
  if (!input.success && message.parameters === null) {
    const none = task.options.input.safeParse(undefined);
    if (none.success) input = none;
  }
  if (!input.success) {
    const err = InputValidationError.fromZod(task.name, input.error);
    return Promise.resolve({ kind: "failed", error: { type: "InputValidationError", message: err.message }, thrown: err });
  }
  const data = input.data;
  // The signal is made when the task first reads it (most never do), already aborted if the try ended meanwhile.
  let controller: AbortController | undefined;
  let aborted: { reason: unknown } | undefined;
  const abort = (reason: unknown): void => {
    if (aborted) return;
    aborted = { reason };
    controller?.abort(reason);
  };
  const ctx: TaskContext = {
    runId: info.runId,
    task: info.task,
    attempt: info.attempt,
    get signal(): AbortSignal {
      if (!controller) {
        controller = new AbortController();
        if (aborted) controller.abort(aborted.reason);
      }
      return controller.signal;
    },
    get log(): Logger {
      return log();
    },
    workerId,
    // Checked here, in the task's own call, so a bad report throws where it was made.
    progress: (...args: unknown[]) => progress().report(progressOf(args)),
  };
  const timeoutSeconds = message.timeoutSeconds ?? task.options.timeoutSeconds;
  return new Promise<Ending>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    // The first of the task's end, its timeout, its cancel and the worker abandoning it ends the try.
    let over = false;
    const end = (ending: Ending): void => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      cancel.listen(undefined);
      abandoned.listen(undefined);
      resolve(ending);
    };
    if (timeoutSeconds !== undefined) {
      timer = setTimeout(() => {
        const err = new TaskTimeoutError(timeoutSeconds);
        abort(err);
        end({ kind: "failed", error: errorOf(err, { stack: false }), thrown: err });
      }, timeoutSeconds * 1000);
    }
    // Like a timeout, a cancel ends the run now, whether or not the function heeds its signal.
    cancel.listen(() => {
      abort(new RunCancelledError(info.runId));
      end({ kind: "cancelled" });
    });
    abandoned.listen(() => {
      abort(new WorkerStoppingError());
      end({ kind: "abandoned" });
    });
    if (over) return;
    Promise.resolve()
      .then(() => task.fn(data, ctx))
      .then(
        (value) => {
          const json = toJson(value);
          if (json.ok) return end({ kind: "completed", value, json: json.text });
          const err = new ResultNotSerializableError(json.message);
          end({ kind: "failed", error: errorOf(err, { stack: false }), thrown: err });
        },
        (err: unknown) => end({ kind: "failed", error: errorOf(err), thrown: err }),
      );
  });
}
