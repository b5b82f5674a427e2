/**
 * Runs the `x-kubernetes-validations` rules over an object (apiextensions-
 * apiserver `schema/cel/validation.go`): every node of the object that has
 * rules is checked with `self` bound to it; transition rules (those naming
 * `oldSelf`) run only where the old object correlates (same property, same
 * map key, same key of a `map` list), and, as validation ratcheting does,
 * rules on a value that the update left unchanged are not enforced.
 */
import { isObj } from "../fields.js";
import { fieldErr, type FieldError, FieldPath } from "./errors.js";
import { celEqual, compileRules, evaluate, type CompiledRule } from "./cel.js";
import { additional, items, listType, mapKeys, props, type Schema, typeOf } from "./schema.js";

/** Validates `v` (with `old`, its correlated old value, when `hasOld`) against the rules under `s`; errors are rooted at `path` (null: the object root). */
export function validateRules(s: Schema, v: unknown, old: unknown, hasOld: boolean, path: FieldPath | null, out: FieldError[] = []): FieldError[] {
  if (v === undefined || v === null) return out;
  for (const r of compileRules(s)) {
    if (!r.program) continue;
    if (r.usesOldSelf && !hasOld) continue;
    if (!r.usesOldSelf && hasOld && celEqual(v, old)) continue;
    checkRule(r, s, v, hasOld ? old : undefined, path, out);
  }
  const child = (p: FieldPath | null, k: string): FieldPath => (p ? p.child(k) : FieldPath.root(k));
  if (Array.isArray(v)) {
    const is = items(s);
    if (!is) return out;
    const keys = listType(s) === "map" ? mapKeys(s) : undefined;
    const oldByKey = new Map<string, unknown>();
    if (keys && hasOld && Array.isArray(old)) for (const o of old) if (isObj(o)) oldByKey.set(JSON.stringify(keys.map((k) => o[k])), o);
    v.forEach((x, i) => {
      const id = keys && isObj(x) ? JSON.stringify(keys.map((k) => x[k])) : undefined;
      const correlated = id !== undefined && oldByKey.has(id);
      const p = path ? path.index(i) : FieldPath.root(`[${i}]`);
      validateRules(is, x, correlated ? oldByKey.get(id) : undefined, correlated, p, out);
    });
    return out;
  }
  if (isObj(v)) {
    const ps = props(s);
    const ap = additional(s);
    const atomic = s["x-kubernetes-map-type"] === "atomic";
    for (const [k, x] of Object.entries(v)) {
      const sub = ps[k] ?? ap;
      if (!sub) continue;
      const correlated = hasOld && !atomic && isObj(old) && k in old;
      const p = ps[k] ? child(path, k) : path ? path.key(k) : FieldPath.root(`[${k}]`);
      validateRules(sub, x, correlated ? (old as Record<string, unknown>)[k] : undefined, correlated, p, out);
    }
  }
  return out;
}

function checkRule(r: CompiledRule, s: Schema, v: unknown, old: unknown, path: FieldPath | null, out: FieldError[]): void {
  const at = r.rule.fieldPath ? appendFieldPath(path, r.rule.fieldPath) : path;
  const field = at ? at.toString() : null;
  let result: unknown;
  try {
    result = evaluate(r.program!, v, old, s);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    out.push(fieldErr.invalid(field, typeOf(s), `${ruleLabel(r)}: ${msg}`));
    return;
  }
  if (result === true) return;
  let message = r.rule.message?.trim() || ruleLabel(r);
  if (r.message) {
    try {
      const m = evaluate(r.message, v, undefined, s);
      if (typeof m === "string" && m.trim() && !/[\r\n]/.test(m)) message = m.trim();
    } catch {
      // An erroring messageExpression falls back to message, as Kubernetes does (and logs it).
    }
  }
  switch (r.rule.reason) {
    case "FieldValueForbidden":
      out.push(fieldErr.forbidden(field, message));
      break;
    case "FieldValueRequired":
      out.push(fieldErr.required(field, message));
      break;
    case "FieldValueDuplicate":
      out.push(fieldErr.duplicate(field, v));
      break;
    default:
      out.push(fieldErr.invalid(field, typeOf(s), message));
  }
}

function ruleLabel(r: CompiledRule): string {
  return `failed rule: ${r.rule.rule.trim()}`;
}

/** A rule's `fieldPath` (`.a.b`, `['k']`, `[0]`) appended to its node's path. */
export function appendFieldPath(base: FieldPath | null, fieldPath: string): FieldPath | null {
  let p = base;
  const re = /\.([A-Za-z_][A-Za-z0-9_-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fieldPath))) {
    if (m[1] !== undefined) p = p ? p.child(m[1]) : FieldPath.root(m[1]);
    else if (m[2] !== undefined) p = p ? p.key(m[2]) : FieldPath.root(`[${m[2]}]`);
    else p = p ? p.index(Number(m[3])) : FieldPath.root(`[${m[3]}]`);
  }
  return p;
}

/** Whether `fieldPath` names a field the schema `s` declares (`cel.ValidFieldPath`). */
export function validFieldPath(s: Schema, fieldPath: string, allowArrayNotation = true): string | undefined {
  let cur: Schema | undefined = s;
  const re = /\.([A-Za-z_][A-Za-z0-9_-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(fieldPath))) {
    pos = re.lastIndex;
    if (!cur) return "does not refer to a valid field";
    if (m[3] !== undefined) {
      if (!allowArrayNotation) return "array notation is not allowed";
      if (typeOf(cur) !== "array") return "does not refer to a valid field";
      cur = items(cur);
      continue;
    }
    const name = m[1] ?? m[2]!;
    cur = props(cur)[name] ?? additional(cur);
    if (!cur) return "does not refer to a valid field";
  }
  if (pos !== fieldPath.length || fieldPath.length === 0) return "does not refer to a valid field";
  return undefined;
}
