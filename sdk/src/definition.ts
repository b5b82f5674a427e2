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
    return z.toJSONSchema(input, { io: "input", unrepresentable: "any", override: loosen }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Regex flags that change what a pattern matches; JSON Schema's `pattern` has no flags, so it would say something else. */
const MEANINGFUL_FLAGS = /[imsuv]/;

/**
 * Where zod's JSON Schema is stricter than zod's own parse, widens it so the
 * run API never refuses parameters the task would take (the worker's zod
 * check still applies): a coerced field (`z.coerce.number()` takes "5"), a
 * `.catch()` (takes anything, or nothing), a `z.preprocess()` (zod writes its output
 * type), and a string whose regex has flags (`/^[a-z]+$/i` written as a
 * flagless `pattern` refuses "ABC"; `z.emoji()` is a `u` pattern).
 */
function loosen(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  const def = (ctx.zodSchema as { _zod: { def: ZodDef } })._zod.def;
  const json = ctx.jsonSchema;
  const anything =
    def.coerce === true || def.type === "catch" || (def.type === "pipe" && def.in?._zod.def.type === "transform");
  if (anything) {
    for (const k of Object.keys(json)) if (k !== "description" && k !== "title") delete json[k];
    return;
  }
  if (def.type === "object" && def.shape && Array.isArray(json.required)) {
    // A field with a .catch() may be left out too: the catch answers for it.
    const caught = new Set(Object.entries(def.shape).filter(([, s]) => s._zod.def.type === "catch").map(([k]) => k));
    const required = (json.required as string[]).filter((k) => !caught.has(k));
    if (required.length) json.required = required;
    else delete json.required;
    return;
  }
  if (def.type !== "string") return;
  // A format (z.emoji()) carries its pattern on itself; `.regex()` and the like as checks.
  const patterns = [def.pattern, ...(def.checks ?? []).map((c) => c._zod.def.pattern)];
  const flagged = patterns.some((p) => p !== undefined && MEANINGFUL_FLAGS.test(p.flags));
  if (!flagged) return;
  delete json.pattern;
  if (Array.isArray(json.allOf)) {
    const rest = (json.allOf as Record<string, unknown>[]).filter((s) => s.pattern === undefined);
    if (rest.length) json.allOf = rest;
    else delete json.allOf;
  }
}

/** The parts of a zod schema's internal definition {@link loosen} reads. */
interface ZodDef {
  type: string;
  coerce?: boolean;
  in?: { _zod: { def: { type: string } } };
  pattern?: RegExp;
  shape?: Record<string, { _zod: { def: { type: string } } }>;
  checks?: { _zod: { def: { pattern?: RegExp } } }[];
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
