/**
 * How one try of a run ended, and the conversions between what a task
 * produces (a return value, a thrown anything) and what the protocol carries
 * (JSON text, a `{type, message, stack?}` error). Kept apart from the code that runs
 * tasks so that these rules can be read, and tested, on their own.
 */
import { boundedStack, type RunError } from "../protocol/index.js";

/** How a try ended. */
export type Ending =
  /** `value` is what the task returned; `json` its JSON text. */
  | { kind: "completed"; value: unknown; json: string }
  /** `thrown` is what failed the try (what the task threw, or the worker's own error for a timeout, bad input or result). */
  | { kind: "failed"; error: RunError; thrown: unknown }
  | { kind: "cancelled" }
  | { kind: "abandoned" };

/**
 * The `{type, message, stack}` of whatever a task threw. The stack is the
 * Error's own (bounded: see `boundedStack`), absent for a thrown non-Error,
 * which has none. `stack: false` leaves it out for the worker's own errors (a
 * timeout, a result JSON cannot carry): their stack points into the worker,
 * which tells the task's author nothing.
 */
export function errorOf(err: unknown, { stack = true }: { stack?: boolean } = {}): RunError {
  if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
    const e = err as Error;
    const ctor = (e.constructor as { name?: string } | undefined)?.name;
    const type = e.name && e.name !== "Error" ? e.name : ctor && ctor !== "Object" ? ctor : "Error";
    const error: RunError = { type: withoutNul(type), message: withoutNul(String(e.message ?? "")) };
    // A getter or a non-string `stack` (code may assign anything) is no trace: leave it out rather than fail the outcome.
    const trace = stack ? stackOf(e) : undefined;
    if (trace) error.stack = boundedStack(withoutNul(trace));
    return error;
  }
  return { type: "Error", message: withoutNul(typeof err === "string" ? err : safeString(err)) };
}

function stackOf(e: Error): string | undefined {
  try {
    return typeof e.stack === "string" ? e.stack : undefined;
  } catch {
    return undefined;
  }
}

// An error's text is for people; U+0000 in it would make the run's outcome
// unstorable (jsonb refuses it), so it is shown as U+FFFD instead.
function withoutNul(s: string): string {
  return s.includes("\u0000") ? s.replaceAll("\u0000", "\uFFFD") : s;
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

// JSON.stringify writes U+0000 as `\u0000`; an even run of backslashes before it is an escaped backslash, not this.
const NUL_IN_JSON = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/** A task's return value as JSON text: `undefined` becomes null; anything JSON.stringify rejects or drops is an error. */
export function toJson(value: unknown): { ok: true; text: string } | { ok: false; message: string } {
  if (value === undefined) return { ok: true, text: "null" };
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    return { ok: false, message: `the task's result cannot be turned into JSON: ${(err as Error).message}` };
  }
  if (text === undefined) return { ok: false, message: `the task's result (a ${typeof value}) is not JSON` };
  // Valid JSON, but PostgreSQL's jsonb cannot store it: the run API could never record the outcome.
  if (NUL_IN_JSON.test(text)) return { ok: false, message: "the task's result contains the character U+0000, which run records cannot store; encode binary data (e.g. base64)" };
  return { ok: true, text };
}

/** What an onFailure hook gets: the thrown error, or an Error standing for a thrown non-Error. */
export function asError(thrown: unknown, error: RunError): Error {
  if (thrown instanceof Error) return thrown;
  const e = new Error(error.message, { cause: thrown });
  e.name = error.type;
  return e;
}
