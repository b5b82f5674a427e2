/**
 * Field paths and ownership for the fake API server's server-side apply: a
 * simplified structured-merge-diff. Maps are merged key by key; lists and
 * scalars are atomic (owned as a whole), which is enough for a manager's
 * fields to survive another manager's apply that leaves them out.
 */
export type Obj = Record<string, unknown>;
export type Path = string[];

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
export const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
export const pathKey = (p: Path): string => JSON.stringify(p);
export const keyPath = (k: string): Path => JSON.parse(k) as Path;

/** Metadata fields that belong to the server, never to a manager. */
const SYSTEM_META = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"]);

/** Every leaf path of `obj` (maps recursed; lists, scalars and empty maps are leaves), without apiVersion/kind/server metadata. */
export function leaves(obj: Obj, prefix: Path = [], out = new Set<string>()): Set<string> {
  for (const [k, v] of Object.entries(obj)) {
    if (prefix.length === 0 && (k === "apiVersion" || k === "kind")) continue;
    if (prefix.length === 1 && prefix[0] === "metadata" && SYSTEM_META.has(k)) continue;
    if (v === undefined) continue;
    const p = [...prefix, k];
    if (isObj(v) && Object.keys(v).length > 0) leaves(v, p, out);
    else out.add(pathKey(p));
  }
  return out;
}

export function getAt(obj: unknown, p: Path): unknown {
  let cur = obj;
  for (const k of p) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

export function setAt(obj: Obj, p: Path, value: unknown): void {
  let cur = obj;
  for (const k of p.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Obj;
  }
  cur[p[p.length - 1]!] = value;
}

/** Removes the field at `p` (list items addressed by index), then any map it leaves empty. */
export function deleteAt(obj: Obj, p: Path): void {
  const parents: unknown[] = [];
  let cur: unknown = obj;
  for (const k of p.slice(0, -1)) {
    parents.push(cur);
    if (isObj(cur)) cur = cur[k];
    else if (Array.isArray(cur)) cur = cur[Number(k)];
    else return;
  }
  if (!isObj(cur)) return;
  delete cur[p[p.length - 1]!];
  for (let i = p.length - 2; i >= 0; i--) {
    const parent = parents[i];
    if (!isObj(parent)) break;
    const child = parent[p[i]!];
    if (isObj(child) && Object.keys(child).length === 0) delete parent[p[i]!];
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
export function changedLeaves(a: Obj, b: Obj): Set<string> {
  const out = new Set<string>();
  const la = leaves(a);
  const lb = leaves(b);
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

/** Merges an apply configuration into `target`: maps key by key, everything else replaced. */
export function mergeApply(target: Obj, patch: Obj): void {
  for (const [k, v] of Object.entries(patch)) {
    if (isObj(v) && isObj(target[k])) mergeApply(target[k] as Obj, v);
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

/** The value at a JSON pointer's parts, through objects and arrays alike. */
function pointerGet(doc: unknown, parts: string[]): unknown {
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
      const f = `f:${seg}`;
      if (!isObj(cur[f])) cur[f] = {};
      cur = cur[f] as Obj;
    }
  }
  return root;
}
