/**
 * Label and field selectors of list and watch requests, with the grammar of
 * apimachinery's `labels.Parse` and `fields.ParseSelector`. A field selector
 * may only name the fields the resource type supports (`metadata.name`,
 * `metadata.namespace`, a CRD's `selectableFields`, a few per built-in
 * type); any other field is a 400, as on the real server.
 */
import { getAt, type Obj } from "./fields.js";
import { HttpError } from "./http.js";

export type Matcher = (obj: Obj) => boolean;

const labelsOf = (o: Obj): Record<string, string> => ((getAt(o, ["metadata", "labels"]) as Record<string, string> | undefined) ?? {});

/** `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated (commas inside parentheses belong to the set). */
export function labelSelector(s: string | undefined): Matcher {
  if (!s?.trim()) return () => true;
  const reqs: ((l: Record<string, string>) => boolean)[] = [];
  for (const raw of splitTopLevel(s)) {
    const r = raw.trim();
    if (!r) continue;
    let m = /^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(r);
    if (m) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(",").map((v) => v.trim()));
      reqs.push(op === "in" ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l) || !values.has(l[key]!));
      continue;
    }
    m = /^([^\s!=()]+)\s*!=\s*([^\s!=()]*)$/.exec(r);
    if (m) {
      const [, key, value] = m as unknown as [string, string, string];
      reqs.push((l) => l[key] !== value);
      continue;
    }
    m = /^([^\s!=()]+)\s*==?\s*([^\s!=()]*)$/.exec(r);
    if (m) {
      const [, key, value] = m as unknown as [string, string, string];
      reqs.push((l) => l[key] === value);
      continue;
    }
    m = /^!\s*([^\s!=()]+)$/.exec(r);
    if (m) {
      const key = m[1]!;
      reqs.push((l) => !(key in l));
      continue;
    }
    m = /^([^\s!=()]+)$/.exec(r);
    if (m) {
      const key = m[1]!;
      reqs.push((l) => key in l);
      continue;
    }
    throw new HttpError(400, "BadRequest", `unable to parse requirement: ${r}`);
  }
  return (o) => {
    const l = labelsOf(o);
    return reqs.every((f) => f(l));
  };
}

/**
 * `field=value`, `field==value`, `field!=value`, comma-separated. `supported`
 * lists the field paths (dotted, no leading dot) the type can be selected by.
 */
export function fieldSelector(s: string | undefined, supported: readonly string[]): Matcher {
  if (!s?.trim()) return () => true;
  const reqs: Matcher[] = [];
  for (const raw of s.split(",")) {
    const r = raw.trim();
    if (!r) continue;
    const m = /^([^!=]+?)\s*(!=|==|=)\s*(.*)$/.exec(r);
    if (!m) throw new HttpError(400, "BadRequest", `invalid selector: '${s}'; can't understand '${r}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    if (!supported.includes(field)) throw new HttpError(400, "BadRequest", `field label not supported: ${field}`);
    const path = field.split(".");
    const valueOf = (o: Obj): string => {
      const v = getAt(o, path);
      return v === undefined || v === null ? "" : String(v);
    };
    reqs.push(op === "!=" ? (o) => valueOf(o) !== value : (o) => valueOf(o) === value);
  }
  return (o) => reqs.every((f) => f(o));
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * A `metav1.LabelSelector` object (`matchLabels` and `matchExpressions` with
 * In, NotIn, Exists, DoesNotExist), as `metav1.LabelSelectorAsSelector`
 * reads it: an empty selector matches everything.
 */
export function labelSelectorObject(sel: Obj | undefined): Matcher {
  const matchLabels = (sel?.matchLabels ?? {}) as Record<string, string>;
  const exprs = (Array.isArray(sel?.matchExpressions) ? sel.matchExpressions : []) as { key: string; operator: string; values?: string[] }[];
  return (o) => {
    const l = labelsOf(o);
    if (Object.entries(matchLabels).some(([k, v]) => l[k] !== v)) return false;
    return exprs.every((e) => {
      const has = e.key in l;
      if (e.operator === "In") return has && (e.values ?? []).includes(l[e.key]!);
      if (e.operator === "NotIn") return !has || !(e.values ?? []).includes(l[e.key]!);
      if (e.operator === "Exists") return has;
      if (e.operator === "DoesNotExist") return !has;
      return false;
    });
  };
}
