/**
 * Field ownership for server-side apply: which manager set which fields,
 * through which subresource, and how that is shown in `managedFields`.
 * Simplified structured-merge-diff (see fields.ts): maps are merged key by
 * key, the associative lists of the built-in types item by item, other
 * lists and scalars are owned whole.
 */
import { fieldsV1, keyPath, type ListKeys } from "./fields.js";
import type { ResourceType } from "./resources.js";

export type Subresource = "status" | "scale";

export interface ManagerEntry {
  manager: string;
  operation: "Apply" | "Update";
  subresource?: Subresource;
  /** Owned leaf paths (fields.ts keys). */
  paths: Set<string>;
  time: string;
}

/** managedFields has one entry per manager, operation and subresource. */
export const managerKey = (manager: string, operation: string, sub?: Subresource): string => `${manager}\u0000${operation}\u0000${sub ?? ""}`;

export function cloneManagers(m: Map<string, ManagerEntry>): Map<string, ManagerEntry> {
  return new Map([...m].map(([k, e]) => [k, { ...e, paths: new Set(e.paths) }]));
}

/** The `metadata.managedFields` entries for `managers`. */
export function renderManagedFields(managers: Iterable<ManagerEntry>, apiVersion: string): Record<string, unknown>[] {
  return [...managers].map((e) => ({
    manager: e.manager,
    operation: e.operation,
    apiVersion,
    time: e.time,
    fieldsType: "FieldsV1",
    fieldsV1: fieldsV1(e.paths),
    ...(e.subresource ? { subresource: e.subresource } : {}),
  }));
}

/** Which of an object's fields a write through `sub` may change: with a status subresource, the object and its status are written separately. */
export function scopeOf(t: ResourceType, sub: Subresource | undefined): (k: string) => boolean {
  if (!t.status) return () => true;
  const status = sub === "status";
  return (k) => (keyPath(k)[0] === "status") === status;
}


/**
 * The associative lists (`x-kubernetes-list-type: map`) of the built-in
 * types the stand-in serves, by field name, with their key. Container ports
 * (keyed by containerPort and protocol, a defaulted key) stay atomic here.
 * A CRD's lists are atomic unless its schema says otherwise, which the
 * stand-in does not read for apply.
 */
const ASSOCIATIVE_LISTS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  imagePullSecrets: "name",
  ownerReferences: "uid",
};

/** How server-side apply keys the lists of `t`'s objects. */
export function listKeysOf(t: ResourceType): ListKeys | undefined {
  return t.crd ? undefined : (field) => ASSOCIATIVE_LISTS[field];
}
