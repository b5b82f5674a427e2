/**
 * Structural-schema invariants of a CRD schema (apiextensions-apiserver
 * `pkg/apiserver/schema/validation.go`, `ValidateStructural`): every field
 * typed, nothing but value validations under allOf/anyOf/oneOf/not, root
 * `metadata` limited to constraints on name and generateName, embedded
 * resources and int-or-string shaped as Kubernetes needs them.
 */
import { isObj } from "../fields.js";
import type { FieldPath } from "./errors.js";
import { errorBody, fieldErr, type FieldError } from "./errors.js";
import { embedded, intOrString, items, preserves, props, type Schema, typeOf } from "./schema.js";

type Level = "root" | "item" | "field";

/** The structural errors of `s` at `path`, sorted as the real server sorts them (by their text). */
export function validateStructural(s: Schema, path: FieldPath): FieldError[] {
  const out: FieldError[] = [];
  invariants(s, "root", path, out);
  return out.sort((a, b) => {
    const ta = `${a.field}: ${errorBody(a)}`;
    const tb = `${b.field}: ${errorBody(b)}`;
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  });
}

function invariants(s: Schema, lvl: Level, path: FieldPath, out: FieldError[]): void {
  const type = typeOf(s);
  if (type === "array" && s.items === undefined) out.push(fieldErr.required(path.child("items").toString(), "must be specified"));
  const is = items(s);
  if (is) invariants(is, "item", path.child("items"), out);
  for (const [k, v] of Object.entries(props(s))) invariants(v, "field", path.child("properties").key(k), out);
  if (s.additionalProperties !== undefined && s.additionalProperties !== false) {
    if (lvl === "root") out.push(fieldErr.forbidden(path.child("additionalProperties").toString(), "must not be used at the root"));
    if (isObj(s.additionalProperties)) invariants(s.additionalProperties, "field", path.child("additionalProperties"), out);
  }
  if (intOrString(s) && preserves(s)) out.push(fieldErr.invalid(path.child("x-kubernetes-preserve-unknown-fields").toString(), true, "must be false if x-kubernetes-int-or-string is true"));
  if (intOrString(s) && embedded(s)) out.push(fieldErr.invalid(path.child("x-kubernetes-embedded-resource").toString(), true, "must be false if x-kubernetes-int-or-string is true"));

  valueValidation(s, isIntOrStringAnyOf(s), isIntOrStringAllOf(s), path, out);

  const checkMetadata = lvl === "root" || embedded(s);
  if (embedded(s) && type !== "object") {
    if (!type) out.push(fieldErr.required(path.child("type").toString(), "must be object if x-kubernetes-embedded-resource is true"));
    else out.push(fieldErr.invalid(path.child("type").toString(), type, "must be object if x-kubernetes-embedded-resource is true"));
  } else if (!type && !intOrString(s) && !preserves(s)) {
    const where = lvl === "root" ? "at the root" : lvl === "item" ? "for specified array items" : "for specified object fields";
    out.push(fieldErr.required(path.child("type").toString(), `must not be empty ${where}`));
  }
  if (embedded(s) && s.additionalProperties !== undefined) out.push(fieldErr.forbidden(path.child("additionalProperties").toString(), "must not be used if x-kubernetes-embedded-resource is set"));
  if (lvl === "root" && type && type !== "object") out.push(fieldErr.invalid(path.child("type").toString(), type, "must be object at the root"));

  const ps = props(s);
  for (const meta of ["kind", "apiVersion"]) {
    if (ps[meta] && checkMetadata && typeOf(ps[meta]) !== "string") out.push(fieldErr.invalid(path.child("properties").key(meta).child("type").toString(), typeOf(ps[meta]), "must be string"));
  }
  if (ps.metadata) metadataInvariants(ps.metadata, checkMetadata, lvl, path.child("properties").key("metadata"), out);
  if (embedded(s) && !preserves(s) && Object.keys(ps).length === 0) {
    out.push(fieldErr.required(path.child("properties").toString(), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"));
  }
}

/** Root metadata may hold `type: object`, a default, and properties that are exactly name and/or generateName. */
function metadataInvariants(s: Schema, checkMetadata: boolean, lvl: Level, path: FieldPath, out: FieldError[]): void {
  if (checkMetadata && typeOf(s) !== "object") out.push(fieldErr.invalid(path.child("type").toString(), typeOf(s), "must be object"));
  if (lvl !== "root") return;
  const rest = { ...s };
  delete rest.type;
  delete rest.default;
  const names = Object.keys(props(s));
  const onlyNames = names.length > 0 && names.length <= 2 && names.every((n) => n === "name" || n === "generateName");
  if (onlyNames) delete rest.properties;
  if (Object.keys(rest).length > 0) out.push(fieldErr.forbidden(path.toString(), "must not specify anything other than name and generateName, but metadata is implicitly specified"));
}

function isIntOrStringAnyOf(s: Schema): boolean {
  const anyOf = s.anyOf;
  return Array.isArray(anyOf) && anyOf.length === 2 && isTypeOnly(anyOf[0], "integer") && isTypeOnly(anyOf[1], "string");
}
function isIntOrStringAllOf(s: Schema): boolean {
  const allOf = s.allOf;
  return Array.isArray(allOf) && allOf.length >= 1 && isObj(allOf[0]) && isIntOrStringAnyOf(allOf[0]);
}
function isTypeOnly(v: unknown, type: string): boolean {
  return isObj(v) && Object.keys(v).length === 1 && v.type === type;
}

function valueValidation(s: Schema, skipAnyOf: boolean, skipFirstAllOfAnyOf: boolean, path: FieldPath, out: FieldError[]): void {
  const list = (k: string): Schema[] => (Array.isArray(s[k]) ? (s[k] as Schema[]) : []);
  if (!skipAnyOf) list("anyOf").forEach((x, i) => nested(x, false, path.child("anyOf").index(i), out));
  list("allOf").forEach((x, i) => nested(x, skipFirstAllOfAnyOf && i === 0, path.child("allOf").index(i), out));
  list("oneOf").forEach((x, i) => nested(x, false, path.child("oneOf").index(i), out));
  if (isObj(s.not)) nested(s.not, false, path.child("not"), out);
  if (typeof s.pattern === "string") {
    try {
      new RegExp(s.pattern, "u");
    } catch (err) {
      out.push(fieldErr.invalid(path.child("pattern").toString(), s.pattern, `must be a valid regular expression, but isn't: error parsing regexp: ${goRegexpError(s.pattern, err)}`));
    }
  }
}

/** Go's regexp error for the common mistakes, else JavaScript's own text. */
function goRegexpError(pattern: string, err: unknown): string {
  const open = pattern.lastIndexOf("[");
  if (open >= 0 && pattern.indexOf("]", open) < 0) return `missing closing ]: \`${pattern.slice(open)}\``;
  const opens = (pattern.match(/(?<!\\)\(/g) ?? []).length;
  const closes = (pattern.match(/(?<!\\)\)/g) ?? []).length;
  if (opens > closes) return `missing closing ): \`${pattern}\``;
  if (closes > opens) return `unexpected ): \`${pattern}\``;
  return err instanceof Error ? err.message : String(err);
}

/** A schema under allOf/anyOf/oneOf/not: value validations only. */
function nested(s: Schema, skipAnyOf: boolean, path: FieldPath, out: FieldError[]): void {
  valueValidation(s, skipAnyOf, false, path, out);
  if (isObj(s.items)) nested(s.items, false, path.child("items"), out);
  for (const [k, v] of Object.entries(props(s))) nested(v, false, path.child("properties").key(k), out);
  const forbid = (key: string, what: string): void => void out.push(fieldErr.forbidden(path.child(key).toString(), what));
  if (typeof s.type === "string" && s.type) forbid("type", "must be empty to be structural");
  if (s.additionalProperties !== undefined) forbid("additionalProperties", "must be undefined to be structural");
  if (s.default !== undefined) forbid("default", "must be undefined to be structural");
  if (typeof s.title === "string" && s.title) forbid("title", "must be empty to be structural");
  if (typeof s.description === "string" && s.description) forbid("description", "must be empty to be structural");
  if (s.nullable === true) forbid("nullable", "must be false to be structural");
  if (s["x-kubernetes-preserve-unknown-fields"] === true) forbid("x-kubernetes-preserve-unknown-fields", "must be false to be structural");
  if (s["x-kubernetes-embedded-resource"] === true) forbid("x-kubernetes-embedded-resource", "must be false to be structural");
  if (s["x-kubernetes-int-or-string"] === true) forbid("x-kubernetes-int-or-string", "must be false to be structural");
  if (Array.isArray(s["x-kubernetes-list-map-keys"]) && s["x-kubernetes-list-map-keys"].length) forbid("x-kubernetes-list-map-keys", "must be empty to be structural");
  if (s["x-kubernetes-list-type"] !== undefined) forbid("x-kubernetes-list-type", "must be undefined to be structural");
  if (s["x-kubernetes-map-type"] !== undefined) forbid("x-kubernetes-map-type", "must be undefined to be structural");
  if (Array.isArray(s["x-kubernetes-validations"]) && s["x-kubernetes-validations"].length) forbid("x-kubernetes-validations", "must be empty to be structural");
  if (props(s).metadata) out.push(fieldErr.forbidden(path.child("properties").key("metadata").toString(), "must not be specified in a nested context"));
}
