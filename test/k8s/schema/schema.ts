/**
 * The OpenAPI v3 schema of a CRD version, as plain JSON, with the accessors
 * the engine needs. Kubernetes turns it into a "structural schema"; here the
 * JSON is used as it is and each module reads the keywords it cares about.
 */
import type { Obj } from "../fields.js";
import { isObj } from "../fields.js";

/** A JSONSchemaProps node. */
export type Schema = Obj;

export const props = (s: Schema | undefined): Record<string, Schema> => (s && isObj(s.properties) ? (s.properties as Record<string, Schema>) : {});
export const items = (s: Schema | undefined): Schema | undefined => (s && isObj(s.items) ? s.items : undefined);
/** The schema of a map's values: `additionalProperties` as a schema (true means anything). */
export const additional = (s: Schema | undefined): Schema | undefined => (s && isObj(s.additionalProperties) ? s.additionalProperties : undefined);
export const preserves = (s: Schema | undefined): boolean => s?.["x-kubernetes-preserve-unknown-fields"] === true;
export const intOrString = (s: Schema | undefined): boolean => s?.["x-kubernetes-int-or-string"] === true;
export const embedded = (s: Schema | undefined): boolean => s?.["x-kubernetes-embedded-resource"] === true;
export const typeOf = (s: Schema | undefined): string => (typeof s?.type === "string" ? s.type : "");
export const listType = (s: Schema | undefined): string | undefined => (typeof s?.["x-kubernetes-list-type"] === "string" ? (s["x-kubernetes-list-type"] as string) : undefined);
export const mapKeys = (s: Schema | undefined): string[] => (Array.isArray(s?.["x-kubernetes-list-map-keys"]) ? (s["x-kubernetes-list-map-keys"] as string[]) : []);

export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
  optionalOldSelf?: boolean;
}
export const rules = (s: Schema | undefined): ValidationRule[] => (Array.isArray(s?.["x-kubernetes-validations"]) ? (s["x-kubernetes-validations"] as ValidationRule[]) : []);

/** The JSON type name of a value, as kube-openapi reports it. */
export function jsonType(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (typeof v === "bigint") return "integer";
  return typeof v;
}

/** The schema one level down for a property of an object value (properties, then additionalProperties). */
export function childSchema(s: Schema | undefined, key: string): Schema | undefined {
  return props(s)[key] ?? additional(s);
}

/** The schema of a version of a CRD (spec.versions[].schema, or the top-level spec.validation of the internal form). */
export function versionSchema(crd: Obj, version: string): Schema | undefined {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const versions = Array.isArray(spec.versions) ? (spec.versions as Obj[]) : [];
  const v = versions.find((x) => x.name === version);
  const s = v && isObj(v.schema) ? v.schema.openAPIV3Schema : undefined;
  return isObj(s) ? s : undefined;
}

/** Subresources of a version (per-version in v1). */
export function versionSubresources(crd: Obj, version: string): Obj {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const versions = Array.isArray(spec.versions) ? (spec.versions as Obj[]) : [];
  const v = versions.find((x) => x.name === version);
  return v && isObj(v.subresources) ? v.subresources : {};
}
