/**
 * Field paths and ownership for the fake API server's server-side apply: a
 * simplified structured-merge-diff. Maps are merged key by key; lists whose
 * items have a key (`ListKeys`: containers by name, ...) are merged item by
 * item, their items addressed by a `k:{"name":"web"}` path segment as in
 * managedFields; other lists and scalars are atomic (owned as a whole).
 */
export type Obj = Record<string, unknown>;
export type Path = string[];

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
export const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
export const pathKey = (p: Path): string => JSON.stringify(p);
export const keyPath = (k: string): Path => JSON.parse(k) as Path;

/** For a list field, the field its items are keyed by (an associative list), or undefined for an atomic list. */
export type ListKeys = (field: string) => string | undefined;

/** The path segment of a keyed list item, as managedFields spells it: `k:{"name":"web"}`. */
export const itemSegment = (key: string, value: unknown): string => `k:${JSON.stringify({ [key]: value })}`;

/** The keyed items of `list` under `key`, or undefined when the list is not keyed (empty, or an item without the key). */
function keyedItems(list: unknown[], key: string | undefined): Obj[] | undefined {
  if (!key || list.length === 0 || !list.every((i) => isObj(i) && i[key] !== undefined && i[key] !== null)) return undefined;
  return list as Obj[];
}

/** The item of `list` a `k:` segment names. */
function findItem(list: unknown[], seg: string): Obj | undefined {
  const want = JSON.parse(seg.slice(2)) as Obj;
  return list.find((i): i is Obj => isObj(i) && Object.entries(want).every(([k, v]) => deepEqual(i[k], v)));
}

/** A path as the real server prints it in conflicts: `spec.template.spec.containers[name="web"].image`. */
export function displayPath(p: Path): string {
  let out = "";
  for (const seg of p) {
    if (seg.startsWith("k:{")) {
      const [[k, v]] = Object.entries(JSON.parse(seg.slice(2)) as Obj) as [[string, unknown]];
      out += `[${k}=${JSON.stringify(v)}]`;
    } else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** Metadata fields that belong to the server, never to a manager. */
const SYSTEM_META = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"]);

/** Every leaf path of `obj` (maps recursed, keyed list items too; other lists, scalars and empty maps are leaves), without apiVersion/kind/server metadata. */
export function leaves(obj: Obj, prefix: Path = [], out = new Set<string>(), keys?: ListKeys): Set<string> {
  for (const [k, v] of Object.entries(obj)) {
    if (prefix.length === 0 && (k === "apiVersion" || k === "kind")) continue;
    if (prefix.length === 1 && prefix[0] === "metadata" && SYSTEM_META.has(k)) continue;
    if (v === undefined) continue;
    const p = [...prefix, k];
    const key = Array.isArray(v) ? keys?.(k) : undefined;
    const items = Array.isArray(v) ? keyedItems(v, key) : undefined;
    if (items) for (const item of items) leaves(item, [...p, itemSegment(key!, item[key!])], out, keys);
    else if (isObj(v) && Object.keys(v).length > 0) leaves(v, p, out, keys);
    else out.add(pathKey(p));
  }
  return out;
}

export function getAt(obj: unknown, p: Path): unknown {
  let cur = obj;
  for (const k of p) {
    if (Array.isArray(cur) && k.startsWith("k:{")) cur = findItem(cur, k);
    else if (isObj(cur)) cur = cur[k];
    else return undefined;
  }
  return cur;
}

export function setAt(obj: Obj, p: Path, value: unknown): void {
  let cur: Obj | unknown[] = obj;
  for (const [i, k] of p.entries()) {
    const last = i === p.length - 1;
    if (Array.isArray(cur)) {
      // Only a keyed item can be addressed in a list.
      let item = findItem(cur, k);
      if (!item) {
        item = JSON.parse(k.slice(2)) as Obj;
        cur.push(item);
      }
      if (last) throw new Error(`cannot set a whole list item at ${p.join(".")}`);
      cur = item;
      continue;
    }
    if (last) {
      cur[k] = value;
      return;
    }
    const nextIsItem = p[i + 1]!.startsWith("k:{");
    if (nextIsItem ? !Array.isArray(cur[k]) : !isObj(cur[k])) cur[k] = nextIsItem ? [] : {};
    cur = cur[k] as Obj | unknown[];
  }
}

/** The fields a path segment names an item by (`k:{"name":"web"}` → `name`); none for other segments. */
const keyFieldsOf = (seg: string | undefined): string[] => (seg?.startsWith("k:{") ? Object.keys(JSON.parse(seg.slice(2)) as Obj) : []);

/**
 * Removes the field at `p` (list items addressed by index or key), then any
 * map it leaves empty and any keyed item it leaves with nothing but its key
 * (a key field itself goes only with the item).
 */
export function deleteAt(obj: Obj, p: Path): void {
  const chain: unknown[] = [obj];
  let cur: unknown = obj;
  for (const k of p.slice(0, -1)) {
    if (Array.isArray(cur)) cur = k.startsWith("k:{") ? findItem(cur, k) : cur[Number(k)];
    else if (isObj(cur)) cur = cur[k];
    else return;
    chain.push(cur);
  }
  const last = p[p.length - 1]!;
  if (Array.isArray(cur) && last.startsWith("k:{")) {
    const item = findItem(cur, last);
    if (item) cur.splice(cur.indexOf(item), 1);
  } else if (isObj(cur)) {
    if (!keyFieldsOf(p[p.length - 2]).includes(last)) delete cur[last];
  } else return;
  for (let i = chain.length - 1; i > 0; i--) {
    const child = chain[i];
    const parent = chain[i - 1];
    const keyFields = keyFieldsOf(p[i - 1]);
    if (!(isObj(child) && Object.keys(child).every((k) => keyFields.includes(k)))) break;
    if (Array.isArray(parent) && keyFields.length) parent.splice(parent.indexOf(child), 1);
    else if (isObj(parent)) delete parent[p[i - 1]!];
    else break;
  }
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

/** The leaf paths whose value differs between `a` and `b` (present in either). */
export function changedLeaves(a: Obj, b: Obj, keys?: ListKeys): Set<string> {
  const out = new Set<string>();
  const la = leaves(a, [], new Set(), keys);
  const lb = leaves(b, [], new Set(), keys);
  for (const k of new Set([...la, ...lb])) {
    const p = keyPath(k);
    if (!deepEqual(getAt(a, p), getAt(b, p))) out.add(k);
  }
  return out;
}

/** Whether one path is the other or lies under it. */
export function overlaps(a: string, b: string): boolean {
  const pa = keyPath(a);
  const pb = keyPath(b);
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) if (pa[i] !== pb[i]) return false;
  return true;
}

/** Merges an apply configuration into `target`: maps key by key, keyed lists item by item (new items last), everything else replaced. */
export function mergeApply(target: Obj, patch: Obj, keys?: ListKeys): void {
  for (const [k, v] of Object.entries(patch)) {
    const key = Array.isArray(v) ? keys?.(k) : undefined;
    const items = Array.isArray(v) ? keyedItems(v, key) : undefined;
    const current = target[k];
    if (items && Array.isArray(current) && keyedItems(current, key)) {
      for (const item of items) {
        const existing = findItem(current, itemSegment(key!, item[key!]));
        if (existing) mergeApply(existing, item, keys);
        else current.push(clone(item));
      }
    } else if (isObj(v) && isObj(current)) mergeApply(current, v, keys);
    else target[k] = clone(v);
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, replace, remove, test). */
export function jsonPatch(target: Obj, ops: { op: string; path: string; value?: unknown }[]): Obj {
  const doc = clone(target);
  for (const op of ops) {
    const parts = op.path.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts[parts.length - 1]!;
    const parent = pointerGet(doc, parts.slice(0, -1));
    if (op.op === "test") {
      if (!deepEqual(pointerGet(doc, parts), op.value)) throw new Error(`test failed at ${op.path}`);
    } else if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(i, 0, clone(op.value));
      else if (op.op === "replace") parent[i] = clone(op.value);
      else if (op.op === "remove") parent.splice(i, 1);
    } else if (isObj(parent)) {
      if (op.op === "add" || op.op === "replace") parent[last] = clone(op.value);
      else if (op.op === "remove") delete parent[last];
    } else throw new Error(`no parent at ${op.path}`);
  }
  return doc;
}

/** The value at a JSON pointer's parts (or any path of keys and indexes), through objects and arrays alike. */
export function pointerGet(doc: unknown, parts: string[]): unknown {
  let cur = doc;
  for (const k of parts) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (isObj(cur)) cur = cur[k];
    else return undefined;
  }
  return cur;
}

/** managedFields' FieldsV1 tree for a set of paths (lists shown as a whole). */
export function fieldsV1(paths: Iterable<string>): Obj {
  const root: Obj = {};
  for (const k of paths) {
    let cur = root;
    for (const seg of keyPath(k)) {
      const f = seg.startsWith("k:{") ? seg : `f:${seg}`;
      if (!isObj(cur[f])) cur[f] = {};
      cur = cur[f] as Obj;
    }
  }
  return root;
}
