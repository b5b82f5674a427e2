/**
 * What a run record can hold, checked without recursion so that no input can
 * overflow the stack of whoever checks it.
 *
 * The bounds protect more than the validator: the embedded database (PGlite)
 * breaks for good on a jsonb value nested ~900 levels deep (WebAssembly
 * "memory access out of bounds", every later query fails), and PostgreSQL
 * refuses text holding U+0000 or a lone UTF-16 surrogate. Such input must be
 * refused as bad input before it reaches either.
 */

/** Deepest nesting of arrays and objects in `parameters` (and in a result): 64 levels. */
export const MAX_JSON_DEPTH = 64;
/** Most keys one object in `parameters` may have. */
export const MAX_OBJECT_KEYS = 10_000;
/** Longest key of an object in `parameters`, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 1024;
/**
 * Deepest nesting a request body may have: {@link MAX_JSON_DEPTH} for the
 * parameters plus the envelope around them (`{runs: [{parameters: …}]}`).
 */
export const MAX_BODY_DEPTH = MAX_JSON_DEPTH + 3;

/** One problem found in a JSON value: where (dotted path, "" for the root) and what. */
export interface JsonProblem {
  path: string;
  message: string;
}

// With the u flag a well-formed pair is one code point; only a lone half is in the category Cs.
const LONE_SURROGATE = /\p{Cs}/u;
// A separate global copy for replacing: a global regex's test() keeps state (lastIndex) between calls.
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "gu");

const joinPath = (base: string, key: string | number): string => (base === "" ? String(key) : `${base}.${String(key)}`);

/**
 * Why `text` cannot be stored by PostgreSQL (as text or inside jsonb), or
 * undefined when it can: U+0000, or a lone UTF-16 surrogate (half of a pair,
 * which is no Unicode character and has no UTF-8 form).
 */
export function unstorableText(text: string): string | undefined {
  if (text.includes("\u0000")) return "contains the character U+0000, which run records cannot store; encode binary data (e.g. base64)";
  if (LONE_SURROGATE.test(text)) return "contains a lone UTF-16 surrogate (half of a pair, not a character), which run records cannot store";
  return undefined;
}

/** `text` with what {@link unstorableText} refuses (U+0000, lone surrogates) replaced by U+FFFD, for diagnostics kept as they come. */
export function storableText(text: string): string {
  return text.replaceAll("\u0000", "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");
}

/**
 * The first way `value` breaks the bounds above, walking it breadth-first
 * without recursion: too deep, too many keys, too long a key. With
 * `text: true` its strings and keys are checked with {@link unstorableText}
 * too. `maxDepth` counts containers: `[]` is depth 1, `[[]]` depth 2.
 */
export function jsonProblem(value: unknown, opts: { maxDepth: number; text: boolean; path?: string }): JsonProblem | undefined {
  const queue: { v: unknown; path: string; depth: number }[] = [{ v: value, path: opts.path ?? "", depth: 0 }];
  for (let i = 0; i < queue.length; i++) {
    const { v, path, depth } = queue[i]!;
    if (typeof v === "string") {
      const why = opts.text ? unstorableText(v) : undefined;
      if (why) return { path, message: why };
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth + 1 > opts.maxDepth) return { path, message: `nests arrays and objects deeper than ${opts.maxDepth} levels` };
    if (Array.isArray(v)) {
      v.forEach((x, j) => queue.push({ v: x, path: joinPath(path, j), depth: depth + 1 }));
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > MAX_OBJECT_KEYS) return { path, message: `has ${keys.length} keys; at most ${MAX_OBJECT_KEYS} are allowed` };
    for (const k of keys) {
      if (k.length > MAX_KEY_LENGTH) return { path: joinPath(path, k.slice(0, 32) + "…"), message: `a key longer than ${MAX_KEY_LENGTH} characters` };
      const why = opts.text ? unstorableText(k) : undefined;
      if (why) return { path: joinPath(path, k), message: `key ${JSON.stringify(k)} ${why}` };
      queue.push({ v: (v as Record<string, unknown>)[k], path: joinPath(path, k), depth: depth + 1 });
    }
  }
  return undefined;
}

const TIMESTAMP_PARTS = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|[+-](\d\d):?(\d\d))$/i;

/**
 * Whether an ISO 8601 timestamp names a real instant PostgreSQL's
 * `timestamptz` can hold: a real calendar day (no 2025-02-30, no month 13),
 * hours 00–23, years 0001–9999, as written and in UTC (PostgreSQL has no
 * year 0; ISO's 4 digits stop at 9999). Checked by building the date and
 * reading its parts back.
 */
export function isRealTimestamp(text: string): boolean {
  const m = TIMESTAMP_PARTS.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (year < 1 || hour > 23 || minute > 59 || second > 59) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return false;
  // An offset can move the instant out of years 1-9999 (0001-01-01T00:00+14:00 is in 1 BC): keep it inside.
  const instant = Date.parse(text);
  return instant >= FIRST_INSTANT && instant <= LAST_INSTANT;
}

const FIRST_INSTANT = Date.parse("0001-01-01T00:00:00Z");
const LAST_INSTANT = Date.parse("9999-12-31T23:59:59.999Z");
