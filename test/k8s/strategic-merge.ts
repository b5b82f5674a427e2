/**
 * Strategic merge patch for the built-in types the stand-in serves, as
 * apimachinery's `strategicpatch` does it: maps merge key by key (null
 * removes), lists with a `patchMergeKey` in the Go types merge item by item
 * (patch items first, then the items only the server had, which is the order
 * the real server answers with), other lists are replaced, and the `$patch`
 * directives (`replace`, `delete`) and `$retainKeys` work on maps and list
 * items. Custom resources never get here: the real server answers 415.
 */
import { clone, isObj, type Obj } from "./fields.js";
import { HttpError } from "./http.js";

/**
 * The merge key of each list field of the core and apps types the stand-in
 * serves (`patchMergeKey` in k8s.io/api), by field name. The few names used
 * with different keys elsewhere (e.g. `ports` of a Service) do not occur in
 * the types served here.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  ports: "containerPort",
  imagePullSecrets: "name",
  hostAliases: "ip",
  conditions: "type",
  ownerReferences: "uid",
  topologySpreadConstraints: "topologyKey",
  resourceClaims: "name",
  schedulingGates: "name",
};

/** Lists merged as sets of scalars (`patchStrategy:"merge"` without a key). */
const MERGED_SCALAR_LISTS = new Set(["finalizers"]);

export function strategicMergePatch(target: Obj, patch: unknown): Obj {
  if (!isObj(patch)) throw new HttpError(400, "BadRequest", "a strategic merge patch must be a JSON object");
  return mergeMap(clone(target), patch);
}

function mergeMap(target: Obj, patch: Obj): Obj {
  const directive = patch.$patch;
  if (directive === "replace") return stripDirectives(patch);
  if (directive === "delete") return {};
  const retain = Array.isArray(patch.$retainKeys) ? new Set(patch.$retainKeys as string[]) : undefined;
  const out: Obj = { ...target };
  if (retain) for (const k of Object.keys(out)) if (!retain.has(k)) delete out[k];
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    if (k.startsWith("$setElementOrder/") || k.startsWith("$deleteFromPrimitiveList/")) continue;
    if (v === null) {
      delete out[k];
    } else if (isObj(v)) {
      if (v.$patch === "delete") delete out[k];
      else out[k] = mergeMap(isObj(out[k]) ? (out[k] as Obj) : {}, v);
    } else if (Array.isArray(v)) {
      out[k] = mergeList(k, Array.isArray(out[k]) ? (out[k] as unknown[]) : [], v);
    } else {
      out[k] = v;
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    const m = /^\$deleteFromPrimitiveList\/(.+)$/.exec(k);
    if (m && Array.isArray(out[m[1]!]) && Array.isArray(v)) out[m[1]!] = (out[m[1]!] as unknown[]).filter((x) => !v.includes(x));
  }
  return out;
}

function mergeList(field: string, target: unknown[], patch: unknown[]): unknown[] {
  const key = MERGE_KEYS[field];
  if (MERGED_SCALAR_LISTS.has(field)) return [...new Set([...target, ...patch])];
  if (!key || !patch.every(isObj)) {
    if (patch.some((p) => isObj(p) && p.$patch === "replace")) return patch.filter((p) => !(isObj(p) && p.$patch)).map(clone);
    return patch.map((p) => (isObj(p) ? stripDirectives(p) : p));
  }
  if (patch.some((p) => (p as Obj).$patch === "replace")) return patch.filter((p) => (p as Obj).$patch !== "replace").map((p) => stripDirectives(p as Obj));
  const byKey = new Map<unknown, Obj>();
  for (const t of target) if (isObj(t)) byKey.set(t[key], t);
  const merged: unknown[] = [];
  const touched = new Set<unknown>();
  for (const p of patch as Obj[]) {
    if (!(key in p)) throw new HttpError(422, "Invalid", `map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    touched.add(p[key]);
    if (p.$patch === "delete") continue;
    const cur = byKey.get(p[key]);
    merged.push(cur ? mergeMap(cur, p) : stripDirectives(p));
  }
  for (const t of target) if (!(isObj(t) && touched.has(t[key]))) merged.push(t);
  return merged;
}

function stripDirectives(o: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith("$")) continue;
    out[k] = isObj(v) ? stripDirectives(v) : clone(v);
  }
  return out;
}
