/**
 * Structural defaulting (apiextensions-apiserver `schema/defaulting`): a
 * `null` on a non-nullable field without a default is dropped, then every
 * missing field (or `null` on a non-nullable one) that has a default gets a
 * copy of it, and defaulting goes on inside the result.
 */
import { clone, isObj, type Obj } from "../fields.js";
import { additional, items, props, type Schema } from "./schema.js";

export function applyDefaults(obj: Obj, schema: Schema): void {
  pruneNulls(obj, schema);
  defaultValue(obj, schema);
}

function pruneNulls(v: unknown, s: Schema): void {
  if (Array.isArray(v)) {
    const is = items(s);
    if (is) for (const x of v) pruneNulls(x, is);
    return;
  }
  if (!isObj(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const sub = props(s)[k] ?? additional(s);
    if (!sub) continue;
    if (x === null && sub.nullable !== true && sub.default === undefined) delete v[k];
    else pruneNulls(x, sub);
  }
}

function defaultValue(v: unknown, s: Schema): void {
  if (Array.isArray(v)) {
    const is = items(s);
    if (is) for (const x of v) defaultValue(x, is);
    return;
  }
  if (!isObj(v)) return;
  for (const [k, sub] of Object.entries(props(s))) {
    if (sub.default === undefined) continue;
    if (!(k in v) || (v[k] === null && sub.nullable !== true)) v[k] = clone(sub.default);
  }
  for (const [k, x] of Object.entries(v)) {
    const sub = props(s)[k] ?? additional(s);
    if (sub) defaultValue(x, sub);
  }
}
