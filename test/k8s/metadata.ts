/**
 * ObjectMeta as the real server treats it on every write: the fields that
 * belong to the server, and the checks of
 * apimachinery/pkg/api/validation/objectmeta.go that a client can trip
 * (name, owner references, finalizers while deleting).
 */
import { clone, isObj, type Obj } from "./fields.js";
import type { StatusCause } from "./schema/index.js";

export function meta(o: Obj): Obj {
  if (!isObj(o.metadata)) o.metadata = {};
  return o.metadata as Obj;
}

export function finalizersOf(o: Obj): string[] {
  const f = meta(o).finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}

/** Server-owned metadata, copied from the stored object over whatever a write sent. */
export function pickSystem(m: Obj): Obj {
  const out: Obj = {};
  for (const k of ["name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"]) if (m[k] !== undefined) out[k] = m[k];
  return out;
}

/** The object without what changes on every write (for "did anything change"). */
export function stripSystem(o: Obj): Obj {
  const c = clone(o);
  const m = meta(c);
  delete m.resourceVersion;
  delete m.generation;
  delete m.managedFields;
  return c;
}

/** Everything but metadata and status: a change here bumps `generation`. */
export function withoutMetaStatus(o: Obj): Obj {
  const c = clone(o);
  delete c.metadata;
  delete c.status;
  return c;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const cause = (field: string, reason: string, message: string): StatusCause => ({ field, reason, message });

/** apimachinery's `path.IsValidPathSegmentName`: what the RBAC types allow as names (so `system:auth-delegator`). */
function pathSegmentProblems(name: string): string[] {
  if (name === "." || name === "..") return [`may not be '${name}'`];
  return ["/", "%"].filter((c) => name.includes(c)).map((c) => `may not contain '${c}'`);
}

/**
 * The causes a write's metadata earns (none when it is fine). `label` says
 * names must be DNS labels (namespaces) rather than DNS subdomains;
 * `pathSegment` that any path segment will do (the RBAC types).
 */
export function metadataCauses(m: Obj, opts: { label?: boolean; pathSegment?: boolean } = {}): StatusCause[] {
  const out: StatusCause[] = [];
  const name = m.name;
  if (typeof name !== "string" || name === "") {
    out.push(cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"));
  } else if (opts.pathSegment) {
    for (const p of pathSegmentProblems(name)) out.push(cause("metadata.name", "FieldValueInvalid", `Invalid value: ${JSON.stringify(name)}: ${p}`));
  } else if (opts.label ? !(DNS1123_LABEL.test(name) && name.length <= 63) : !(DNS1123_SUBDOMAIN.test(name) && name.length <= 253)) {
    const what = opts.label ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character" : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
    out.push(cause("metadata.name", "FieldValueInvalid", `Invalid value: ${JSON.stringify(name)}: ${what}`));
  }
  const refs = m.ownerReferences;
  if (refs !== undefined && refs !== null) {
    if (!Array.isArray(refs)) out.push(cause("metadata.ownerReferences", "FieldValueTypeInvalid", "Invalid value: must be a list"));
    else {
      let controllers = 0;
      for (const r of refs) {
        const ref = isObj(r) ? r : {};
        // The real server names these fields without the list index (validateOwnerReference's field path).
        if (!ref.apiVersion) out.push(cause("metadata.ownerReferences.apiVersion", "FieldValueInvalid", `Invalid value: "": version must not be empty`));
        if (!ref.kind) out.push(cause("metadata.ownerReferences.kind", "FieldValueInvalid", `Invalid value: "": kind must not be empty`));
        if (!ref.name) out.push(cause("metadata.ownerReferences.name", "FieldValueInvalid", `Invalid value: "": name must not be empty`));
        if (!ref.uid) out.push(cause("metadata.ownerReferences.uid", "FieldValueInvalid", `Invalid value: "": uid must not be empty`));
        if (ref.controller === true) controllers++;
      }
      if (controllers > 1) out.push(cause("metadata.ownerReferences", "FieldValueInvalid", "Invalid value: only one reference can have Controller set to true"));
    }
  }
  return out;
}

/** Kubernetes lets a write to an object being deleted remove finalizers, never add one. */
export function newFinalizersWhileDeleting(prev: Obj, next: Obj): StatusCause[] {
  if (meta(prev).deletionTimestamp === undefined) return [];
  const had = new Set(finalizersOf(prev));
  const added = finalizersOf(next).filter((f) => !had.has(f));
  return added.length ? [cause("metadata.finalizers", "FieldValueForbidden", `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`)] : [];
}
