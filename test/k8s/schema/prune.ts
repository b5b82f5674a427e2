/**
 * Structural pruning (apiextensions-apiserver `schema/pruning`): drops the
 * fields a schema does not specify, except under
 * `x-kubernetes-preserve-unknown-fields`, and reports each dropped path, which
 * the decoder turns into a Warning (fieldValidation=Warn) or a strict
 * decoding error (Strict). `apiVersion`, `kind` and `metadata` of the object
 * and of embedded resources are kept; their metadata is held to ObjectMeta's
 * fields.
 */
import { isObj, type Obj } from "../fields.js";
import { additional, embedded, items, preserves, props, type Schema } from "./schema.js";

/** The fields of ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1). */
export const OBJECT_META_FIELDS = new Set([
  "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
  "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers", "managedFields",
]);

const join = (base: string, k: string): string => (base ? `${base}.${k}` : k);

/** Prunes `obj` (a whole custom object) in place; returns the paths of the fields it dropped, in document order. */
export function prune(obj: Obj, schema: Schema): string[] {
  const unknown: string[] = [];
  pruneResource(obj, schema, "", unknown);
  return unknown;
}

function pruneResource(obj: Obj, s: Schema, path: string, unknown: string[]): void {
  for (const k of Object.keys(obj)) {
    const p = join(path, k);
    if (k === "apiVersion" || k === "kind") continue;
    if (k === "metadata") {
      if (isObj(obj.metadata)) pruneMeta(obj.metadata, p, unknown);
      continue;
    }
    pruneField(obj, k, props(s)[k] ?? additional(s), preserves(s), p, unknown);
  }
}

function pruneMeta(meta: Obj, path: string, unknown: string[]): void {
  for (const k of Object.keys(meta)) {
    if (!OBJECT_META_FIELDS.has(k)) {
      unknown.push(join(path, k));
      delete meta[k];
    }
  }
}

function pruneField(parent: Obj, k: string, s: Schema | undefined, parentPreserves: boolean, path: string, unknown: string[]): void {
  if (!s) {
    if (!parentPreserves) {
      unknown.push(path);
      delete parent[k];
    }
    return;
  }
  pruneValue(parent[k], s, path, unknown);
}

function pruneValue(v: unknown, s: Schema, path: string, unknown: string[]): void {
  if (Array.isArray(v)) {
    const is = items(s);
    if (is) v.forEach((x, i) => pruneValue(x, is, `${path}[${i}]`, unknown));
    return;
  }
  if (!isObj(v)) return;
  if (embedded(s)) {
    pruneResource(v, s, path, unknown);
    return;
  }
  for (const k of Object.keys(v)) pruneField(v, k, props(s)[k] ?? additional(s), preserves(s) || s.additionalProperties === true, join(path, k), unknown);
}
