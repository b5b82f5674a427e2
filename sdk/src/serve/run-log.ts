import { format } from "node:util";
import type { Logger } from "pino";
import type { Json, RunLogLine } from "../protocol/index.js";
import type { RunLogLevel } from "./index.js";

type Level = RunLogLine["level"];
const LEVEL_VALUES: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const LEVELS = Object.keys(LEVEL_VALUES) as Level[];
// A line is one NATS message: keep it well under any server's max payload.
const MAX_MSG_CHARS = 8 * 1024;
const MAX_LINE_BYTES = 32 * 1024;

/**
 * Wraps a run's pino logger so that each line written at `threshold` or above
 * is also handed to `emit` as a {@link RunLogLine}; the logger itself writes
 * as before. Children made with `.child()` are wrapped too. Building the line
 * costs one object walk; `emit` must not block (the worker does a core NATS
 * publish, which only buffers).
 */
export function runLogger(logger: Logger, threshold: RunLogLevel, attempt: number, emit: (line: RunLogLine) => void): Logger {
  if (threshold === "silent") return logger;
  const min = LEVEL_VALUES[threshold];
  return wrap(logger, min, attempt, emit);
}

function wrap(logger: Logger, min: number, attempt: number, emit: (line: RunLogLine) => void): Logger {
  const methods = new Map<string | symbol, (...args: unknown[]) => void>();
  for (const level of LEVELS) {
    if (LEVEL_VALUES[level] < min) continue;
    methods.set(level, (...args: unknown[]) => {
      try {
        emit(lineOf(level, attempt, args));
      } catch {
        // A line that cannot be kept must never break the task.
      }
      (logger[level] as (...a: unknown[]) => void)(...args);
    });
  }
  const child = (bindings: Record<string, unknown>, options?: object): Logger =>
    wrap(logger.child(bindings, options) as unknown as Logger, min, attempt, emit);
  return new Proxy(logger, {
    get(target, prop) {
      const method = methods.get(prop);
      if (method) return method;
      if (prop === "child") return child;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set(target, prop, value) {
      return Reflect.set(target, prop, value, target);
    },
  });
}

/** A pino call's arguments (`(obj?, msg?, ...interpolation)`) as a log line. */
export function lineOf(level: Level, attempt: number, args: unknown[]): RunLogLine {
  let rest = args;
  let data: Record<string, Json> | undefined;
  let fallbackMsg = "";
  const first = args[0];
  if (typeof first === "object" && first !== null) {
    rest = args.slice(1);
    if (first instanceof Error) {
      data = { err: { type: first.name, message: first.message, stack: first.stack ?? "" } };
      fallbackMsg = first.message;
    } else {
      data = toJsonRecord(first);
      const err = (first as { err?: unknown }).err;
      if (err instanceof Error) {
        data = { ...data, err: { type: err.name, message: err.message, stack: err.stack ?? "" } };
        fallbackMsg = err.message;
      }
      if (typeof (first as { msg?: unknown }).msg === "string") fallbackMsg = (first as { msg: string }).msg;
    }
  }
  let msg = rest.length === 0 ? fallbackMsg : typeof rest[0] === "string" ? format(...(rest as [string, ...unknown[]])) : format("%j", rest[0]);
  if (msg.length > MAX_MSG_CHARS) msg = `${msg.slice(0, MAX_MSG_CHARS)}… (${msg.length - MAX_MSG_CHARS} more characters)`;
  const line: RunLogLine = { at: new Date().toISOString(), level, msg, attempt };
  if (data && Object.keys(data).length > 0 && JSON.stringify(data).length <= MAX_LINE_BYTES) line.data = data;
  return line;
}

function toJsonRecord(obj: object): Record<string, Json> | undefined {
  try {
    const parsed: unknown = JSON.parse(JSON.stringify(obj));
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, Json>) : undefined;
  } catch {
    return undefined;
  }
}
