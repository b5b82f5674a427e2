/**
 * A task's definition as data: what a worker registers with the run API so
 * that one `task({...})` in code rules every process (the run API checks
 * `parameters` against the input's JSON Schema and enforces the limits).
 * Functions (limit keys, `retryOn`) cannot travel: a key function is told as
 * `keyed: true`, the rest is left out.
 */
import { z } from "zod";
import type { FlowSettings } from "./flow.js";
import type { TaskDefinition } from "./protocol/index.js";
import type { RetryDelay } from "./retries.js";

/** The options a definition is made from (a subset of a task's). */
export interface DefinitionSource extends FlowSettings<never> {
  readonly name: string;
  readonly input: z.ZodType;
  readonly description?: string;
  readonly retries?: number;
  readonly retryDelaySeconds?: RetryDelay;
  readonly timeoutSeconds?: number;
}

/** Builds the definition of a task whose options were already checked by `task()`. */
export function taskDefinition(source: DefinitionSource): TaskDefinition {
  const inputSchema = inputJsonSchema(source.input);
  const retryDelaySeconds = retryDelayData(source.retryDelaySeconds);
  return {
    name: source.name,
    ...(source.description !== undefined ? { description: source.description } : {}),
    ...(inputSchema ? { inputSchema } : {}),
    ...(source.concurrency ? { concurrency: { limit: source.concurrency.limit, keyed: source.concurrency.key !== undefined } } : {}),
    ...(source.rateLimit
      ? { rateLimit: { limit: source.rateLimit.limit, periodSeconds: source.rateLimit.periodSeconds, keyed: source.rateLimit.key !== undefined } }
      : {}),
    retries: source.retries ?? 0,
    ...(retryDelaySeconds !== undefined ? { retryDelaySeconds } : {}),
    ...(source.timeoutSeconds !== undefined ? { timeoutSeconds: source.timeoutSeconds } : {}),
  };
}

/**
 * The input as JSON Schema (draft 2020-12) of what a caller sends (`io:
 * "input"`: before defaults and transforms). A part JSON Schema cannot say
 * (a date, a custom check) becomes "anything": the run API then lets it
 * through and the worker's zod check still catches it. A schema zod cannot
 * convert at all gives none: the run API checks nothing for the task.
 */
function inputJsonSchema(input: z.ZodType): Record<string, unknown> | undefined {
  try {
    return z.toJSONSchema(input, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function retryDelayData(delay: RetryDelay | undefined): TaskDefinition["retryDelaySeconds"] {
  if (delay === undefined || typeof delay === "number") return delay;
  if (Array.isArray(delay)) return [...(delay as readonly number[])];
  if (typeof delay === "object" && "exponential" in delay) {
    const { baseSeconds, maxSeconds, jitter } = delay.exponential;
    return { exponential: { baseSeconds, ...(maxSeconds !== undefined ? { maxSeconds } : {}), ...(jitter !== undefined ? { jitter } : {}) } };
  }
  return undefined;
}
