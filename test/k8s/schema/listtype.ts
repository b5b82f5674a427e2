/**
 * The `x-kubernetes-list-type` invariants (apiextensions-apiserver
 * `schema/listtype`): no repeated item in a `set`, no two items with the same
 * key fields in a `map`.
 */
import { isObj } from "../fields.js";
import type { FieldPath} from "./errors.js";
import { fieldErr, type FieldError } from "./errors.js";
import { additional, items, listType, mapKeys, props, type Schema } from "./schema.js";

/** JSON with object keys sorted: two equal items give the same text whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

export function validateListTypes(v: unknown, s: Schema, path: FieldPath, out: FieldError[] = []): FieldError[] {
  if (Array.isArray(v)) {
    const lt = listType(s);
    if (lt === "set") {
      const seen = new Set<string>();
      v.forEach((x, i) => {
        const key = canonical(x);
        if (seen.has(key)) out.push(fieldErr.duplicate(path.index(i).toString(), x));
        seen.add(key);
      });
    } else if (lt === "map") {
      const keys = mapKeys(s);
      const seen = new Set<string>();
      v.forEach((x, i) => {
        if (!isObj(x)) return;
        const id: Record<string, unknown> = {};
        for (const k of keys) if (k in x) id[k] = x[k];
        const key = canonical(keys.map((k) => x[k]));
        if (seen.has(key)) out.push(fieldErr.duplicate(path.index(i).toString(), id));
        seen.add(key);
      });
    }
    const is = items(s);
    if (is) v.forEach((x, i) => validateListTypes(x, is, path.index(i), out));
    return out;
  }
  if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      const ps = props(s);
      if (ps[k]) validateListTypes(x, ps[k], path.child(k), out);
      else if (additional(s)) validateListTypes(x, additional(s)!, path.key(k), out);
    }
  }
  return out;
}
