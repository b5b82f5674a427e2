import { createHash } from "node:crypto";
import { z } from "zod";
import { ConfigError } from "./errors.js";

/**
 * What a cache key is made of, besides the task's name (always part of it), as
 * in Prefect's cache policies:
 * - `"inputs"`: the validated input (or what `key(input)` returns);
 * - `"source"`: the task function's source text, so that changing the code
 *   stops serving results the old code computed;
 * - `"task"`: nothing more: every run of the task shares one key.
 */
export type CachePolicyPart = "inputs" | "source" | "task";

/** The `cache` option of a task. */
export interface CacheOptions<I = unknown> {
  /** What the key is made of. @defaultValue `["inputs", "source"]` */
  readonly policy?: readonly CachePolicyPart[];
  /**
   * Replaces the inputs part of the key: runs whose inputs give the same
   * string share results (e.g. `(i) => i.url` to ignore other fields). Needs
   * `"inputs"` in the policy. @defaultValue the input's canonical JSON (keys sorted)
   */
  key?(input: I): string;
  /** How long a completed run's result serves later runs. @defaultValue forever */
  readonly expiresInSeconds?: number;
}

export const DEFAULT_CACHE_POLICY: readonly CachePolicyPart[] = Object.freeze(["inputs", "source"]);

const CacheOptionsSchema = z.strictObject({
  policy: z
    .array(z.enum(["inputs", "source", "task"]))
    .min(1, "name at least one of inputs, source, task")
    .refine((p) => new Set(p).size === p.length, "names a part twice")
    .optional(),
  key: z.custom<(input: unknown) => string>((v) => typeof v === "function", "must be a function").optional(),
  expiresInSeconds: z.number().positive().optional(),
});

/** Checks a task's `cache` option; throws a {@link ConfigError} naming the task and the field. */
export function checkCacheOptions(task: string, cache: unknown): void {
  const parsed = CacheOptionsSchema.safeParse(cache);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`task "${task}": cache${issue.path.length ? `.${issue.path.join(".")}` : ""}: ${issue.message}`);
  }
  const policy = parsed.data.policy ?? DEFAULT_CACHE_POLICY;
  if (parsed.data.key && !policy.includes("inputs")) {
    throw new ConfigError(`task "${task}": cache.key replaces the inputs part of the key, but the policy [${policy.join(", ")}] has no "inputs"`);
  }
}

/**
 * The cache key of a run: the sha256 (hex) of the task's name and the parts
 * its policy names. Computed by `delay()` and `map()` and sent with the run;
 * the run API answers an unexpired completed run with the same key instead of
 * running the task again.
 */
export function cacheKeyOf(task: string, fn: (...args: never[]) => unknown, cache: CacheOptions<never>, input: unknown): string {
  const policy = cache.policy ?? DEFAULT_CACHE_POLICY;
  let inputs: string | null = null;
  if (policy.includes("inputs")) {
    if (cache.key) {
      const k = (cache.key as (input: unknown) => unknown)(input);
      if (typeof k !== "string") throw new ConfigError(`task "${task}": cache.key must return a string, not ${typeof k}`);
      inputs = `key:${k}`;
    } else {
      inputs = `json:${canonicalJson(input)}`;
    }
  }
  const source = policy.includes("source") ? sourceOf(fn) : null;
  // A JSON array frames the parts: no two different combinations hash the same text.
  return createHash("sha256").update(JSON.stringify(["offload-cache-1", task, inputs, source])).digest("hex");
}

// A task's function never changes: map() of thousands of inputs reads its source once.
const sources = new WeakMap<object, string>();
function sourceOf(fn: (...args: never[]) => unknown): string {
  let text = sources.get(fn);
  if (text === undefined) sources.set(fn, (text = fn.toString()));
  return text;
}

/**
 * JSON with object keys sorted at every depth, so that `{a, b}` and `{b, a}`
 * give the same text. Follows `JSON.stringify` otherwise (`toJSON`, undefined
 * fields dropped, undefined in arrays as null); throws on cycles and BigInts.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value, new Set())) ?? "null";
}

function sorted(value: unknown, seen: Set<object>): unknown {
  if (typeof value !== "object" || value === null) return value;
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === "function") return sorted((json as () => unknown).call(value), seen);
  if (seen.has(value)) throw new TypeError("cannot compute a cache key: the input has a cycle");
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => sorted(v, seen));
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sorted((value as Record<string, unknown>)[k], seen);
    return out;
  } finally {
    seen.delete(value);
  }
}
