import type { Condition } from "../crds/schemas.js";

/** A condition as computed by a reconcile: `lastTransitionTime` is filled in by {@link mergeConditions}. */
export type ConditionUpdate = Omit<Condition, "lastTransitionTime">;

/**
 * The new conditions list: each update replaces the condition of its type,
 * keeping `lastTransitionTime` unless `status` changed (as metav1 expects).
 * Conditions of other types are kept as they were.
 */
export function mergeConditions(current: readonly Condition[] | undefined, updates: readonly ConditionUpdate[], now: Date): Condition[] {
  const out = [...(current ?? [])];
  for (const u of updates) {
    const i = out.findIndex((c) => c.type === u.type);
    const prev = i >= 0 ? out[i] : undefined;
    const lastTransitionTime = prev && prev.status === u.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z");
    const next: Condition = { ...u, lastTransitionTime };
    if (i >= 0) out[i] = next;
    else out.push(next);
  }
  return out;
}

/** The condition of `type`, if any. */
export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Deep equality of JSON-like values, ignoring key order (to skip status writes that change nothing). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}
