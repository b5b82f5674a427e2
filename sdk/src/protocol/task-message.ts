/**
 * Reading a task message in a worker: every run's message is checked, and
 * zod's walk of it (the parameters' JSON included) was the worker's largest
 * cost per run after its socket writes. Text that JSON.parse read is JSON
 * already, so the parameters need no walk; the other fields are checked by
 * hand. Anything this fast check does not accept as it stands (a trace
 * context, a field of the wrong type) goes to {@link TaskMessageSchema}, which
 * accepts it or throws the same error as ever: the check only ever says yes
 * where the schema says yes, with the same result.
 */
import { isTaskName } from "./names.js";
import { TaskMessageSchema, type TaskMessage } from "./messages.js";

/** The task message in `text`; throws a SyntaxError (not JSON) or a ZodError (not a task message). */
export function parseTaskMessage(text: string): TaskMessage {
  const raw: unknown = JSON.parse(text);
  return quickTaskMessage(raw) ?? TaskMessageSchema.parse(raw);
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** `raw` as the schema would give it, when it is plainly valid; undefined to let the schema decide. */
export function quickTaskMessage(raw: unknown): TaskMessage | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const m = raw as Record<string, unknown>;
  const { runId, task, parameters, attemptsBefore, dispatch, timeoutSeconds } = m;
  if (typeof runId !== "string" || !isTaskName(task) || parameters === undefined || !isCount(attemptsBefore) || !isCount(dispatch)) return undefined;
  if (m.traceContext !== undefined) return undefined;
  // The schema's parameters are any JSON, which whatever JSON.parse returned is (it never gives undefined, NaN or Infinity).
  const message: TaskMessage = { runId, task, parameters: parameters as TaskMessage["parameters"], attemptsBefore, dispatch };
  if (timeoutSeconds !== undefined) {
    if (typeof timeoutSeconds !== "number" || !(timeoutSeconds > 0) || !Number.isFinite(timeoutSeconds)) return undefined;
    message.timeoutSeconds = timeoutSeconds;
  }
  return message;
}
