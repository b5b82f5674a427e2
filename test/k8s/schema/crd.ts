/**
 * CustomResourceDefinition validation on create and update
 * (apiextensions `validation.go`, `ValidateCustomResourceDefinition`), on the
 * internal form kube-apiserver validates: what all versions share (schema,
 * subresources, printer columns, selectable fields) is hoisted to the
 * top-level fields first, which is why errors then point at
 * `spec.validation.openAPIV3Schema…`, `spec.subresources…`,
 * `spec.additionalPrinterColumns[i]…` and `spec.selectableFields`.
 */
import { clone, deepEqual, isObj, type Obj } from "../fields.js";
import { fieldErr, GoLiteral, invalid, strictDecoding, type FieldError, FieldPath } from "./errors.js";
import { pruneCrd } from "./crdshape.js";
import { validateVersionSchema } from "./openapi.js";
import { validFieldPath } from "./rules.js";
import type { Schema } from "./schema.js";
import { typeOf } from "./schema.js";
import type { CrdCheckOptions, CrdCheckResult } from "./types.js";

interface Version {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated: boolean;
  deprecationWarning?: string;
  schema?: Obj;
  subresources?: Obj;
  columns?: Obj[];
  selectableFields?: Obj[];
}

interface Internal {
  name: string;
  group: string;
  scope: string;
  names: Obj;
  versions: Version[];
  validation?: Obj;
  subresources?: Obj;
  columns?: Obj[];
  selectableFields?: Obj[];
  conversion?: Obj;
  preserveUnknownFields?: boolean;
  storedVersions: string[];
  acceptedNames: Obj;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const objOr = (v: unknown): Obj | undefined => (isObj(v) ? v : undefined);
const listOr = (v: unknown): Obj[] | undefined => (Array.isArray(v) && v.length ? (v as Obj[]) : undefined);

/** v1 to internal conversion: a field every version sets to the same value moves to the top level. */
function toInternal(crd: Obj, old: Obj | undefined): Internal {
  const spec = objOr(crd.spec) ?? {};
  const meta = objOr(crd.metadata) ?? {};
  const versions: Version[] = (Array.isArray(spec.versions) ? (spec.versions as Obj[]) : []).map((v) => ({
    name: str(v.name),
    served: v.served === true,
    storage: v.storage === true,
    deprecated: v.deprecated === true,
    deprecationWarning: typeof v.deprecationWarning === "string" ? v.deprecationWarning : undefined,
    schema: objOr(v.schema),
    subresources: objOr(v.subresources),
    columns: listOr(v.additionalPrinterColumns),
    selectableFields: listOr(v.selectableFields),
  }));
  const out: Internal = {
    name: str(meta.name),
    group: str(spec.group),
    scope: str(spec.scope),
    names: objOr(spec.names) ?? {},
    versions,
    conversion: objOr(spec.conversion),
    preserveUnknownFields: typeof spec.preserveUnknownFields === "boolean" ? spec.preserveUnknownFields : undefined,
    storedVersions: [],
    acceptedNames: objOr(objOr(crd.status)?.acceptedNames) ?? {},
  };
  const hoist = <K extends "schema" | "subresources" | "columns" | "selectableFields">(k: K): Version[K] | undefined => {
    if (!versions.length) return undefined;
    const first = versions[0]![k];
    if (!versions.every((v) => deepEqual(v[k], first))) return undefined;
    for (const v of versions) delete v[k];
    return first;
  };
  out.validation = hoist("schema");
  out.subresources = hoist("subresources");
  out.columns = hoist("columns");
  out.selectableFields = hoist("selectableFields");
  // PrepareForCreate records the storage version; an update keeps what was stored before.
  const storage = versions.find((v) => v.storage)?.name;
  const previous = old ? ((objOr(old.status)?.storedVersions as string[] | undefined) ?? []) : [];
  out.storedVersions = [...previous];
  if (storage && !out.storedVersions.includes(storage)) out.storedVersions.push(storage);
  return out;
}

export function validateCrd(crd: Obj, opts: CrdCheckOptions): CrdCheckResult {
  const body = clone(crd);
  const unknown = pruneCrd(body);
  if (unknown.length && opts.fieldValidation === "Strict") return { warnings: [], rejection: strictDecoding("CustomResourceDefinition", "v1", unknown) };
  const warnings = opts.fieldValidation === "Ignore" ? [] : unknown.map((u) => `unknown field ${JSON.stringify(u)}`);
  const c = toInternal(body, opts.old);
  const errs: FieldError[] = [];
  errs.push(...validateMeta(c));
  errs.push(...validateSpec(c));
  errs.push(...validateNames(c.acceptedNames, FieldPath.root("status").child("acceptedNames")));
  errs.push(...validateStoredVersions(c));
  if (opts.old) errs.push(...validateUpdate(c, toInternal(clone(opts.old), undefined), opts.old));
  if (!errs.length) return { warnings };
  return { warnings, rejection: invalid("CustomResourceDefinition.apiextensions.k8s.io", c.name, errs) };
}

// ---- names -----------------------------------------------------------------------------------------

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function dns1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push("must be no more than 253 characters");
  if (!DNS1123_SUBDOMAIN.test(v)) errs.push(`a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`);
  return errs;
}
function dns1035Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push("must be no more than 63 characters");
  if (!DNS1035_LABEL.test(v)) errs.push(`a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`);
  return errs;
}

function validateMeta(c: Internal): FieldError[] {
  const p = FieldPath.root("metadata").child("name");
  if (!c.name) return [fieldErr.required(p.toString(), "name or generateName is required")];
  const problems = dns1123Subdomain(c.name);
  if (c.name !== `${str(c.names.plural)}.${c.group}`) problems.push(`must be spec.names.plural+"."+spec.group`);
  return problems.map((m) => fieldErr.invalid(p.toString(), c.name, m));
}

function validateNames(n: Obj, p: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  const label = (k: string, lower = false): void => {
    const v = str(n[k]);
    const problems = dns1035Label(lower ? v.toLowerCase() : v);
    if (v && problems.length) errs.push(fieldErr.invalid(p.child(k).toString(), v, (lower ? "may have mixed case, but should otherwise match: " : "") + problems.join(",")));
  };
  label("plural");
  label("singular");
  label("kind", true);
  label("listKind", true);
  (Array.isArray(n.shortNames) ? (n.shortNames as string[]) : []).forEach((s, i) => {
    const problems = dns1035Label(s);
    if (problems.length) errs.push(fieldErr.invalid(p.child("shortNames").index(i).toString(), s, problems.join(",")));
  });
  if (str(n.kind) && n.kind === n.listKind) errs.push(fieldErr.invalid(p.child("listKind").toString(), n.listKind, "kind and listKind may not be the same"));
  (Array.isArray(n.categories) ? (n.categories as string[]) : []).forEach((s, i) => {
    const problems = dns1035Label(s);
    if (problems.length) errs.push(fieldErr.invalid(p.child("categories").index(i).toString(), s, problems.join(",")));
  });
  return errs;
}

// ---- spec ------------------------------------------------------------------------------------------

const versionsLiteral = (c: Internal): GoLiteral =>
  new GoLiteral(`[]apiextensions.CustomResourceDefinitionVersion{${c.versions.map((v) => `apiextensions.CustomResourceDefinitionVersion{Name:${JSON.stringify(v.name)}, Served:${v.served}, Storage:${v.storage}, ...}`).join(", ")}}`);

function validateSpec(c: Internal): FieldError[] {
  const errs: FieldError[] = [];
  const spec = FieldPath.root("spec");
  if (!c.group) errs.push(fieldErr.required(spec.child("group").toString()));
  else {
    const problems = dns1123Subdomain(c.group);
    if (problems.length) errs.push(fieldErr.invalid(spec.child("group").toString(), c.group, problems.join(",")));
    else if (c.group.split(".").length < 2) errs.push(fieldErr.invalid(spec.child("group").toString(), c.group, "should be a domain with at least one dot"));
  }
  if (!c.scope) errs.push(fieldErr.required(spec.child("scope").toString()));
  else if (c.scope !== "Cluster" && c.scope !== "Namespaced") errs.push(fieldErr.notSupported(spec.child("scope").toString(), c.scope, ["Cluster", "Namespaced"]));

  if (!c.validation) {
    c.versions.forEach((v, i) => {
      if (!v.schema || !isObj(v.schema.openAPIV3Schema)) errs.push(fieldErr.required(spec.child("versions").index(i).child("schema", "openAPIV3Schema").toString(), "schemas are required"));
    });
  }
  if (c.preserveUnknownFields === true) {
    errs.push(fieldErr.invalid(spec.child("preserveUnknownFields").toString(), true, "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"));
  }

  let storageCount = 0;
  const seen = new Set<string>();
  let unique = true;
  c.versions.forEach((v, i) => {
    const vp = spec.child("versions").index(i);
    if (v.storage) storageCount++;
    if (seen.has(v.name)) unique = false;
    seen.add(v.name);
    const problems = dns1035Label(v.name);
    if (problems.length) errs.push(fieldErr.invalid(vp.child("name").toString(), v.name, problems.join(",")));
    if (!v.deprecated && v.deprecationWarning !== undefined) errs.push(fieldErr.invalid(vp.child("deprecationWarning").toString(), v.deprecationWarning, "can only be set for deprecated versions"));
    const subresources = c.subresources ?? v.subresources;
    const statusEnabled = isObj(subresources?.status);
    if (v.schema && isObj(v.schema.openAPIV3Schema)) errs.push(...validateVersionSchema(v.schema.openAPIV3Schema, statusEnabled, vp.child("schema")));
    errs.push(...validateSubresources(v.subresources, vp.child("subresources")));
    (v.columns ?? []).forEach((col, j) => errs.push(...validateColumn(col, vp.child("additionalPrinterColumns").index(j))));
    if (v.selectableFields) {
      const schema = v.schema && isObj(v.schema.openAPIV3Schema) ? v.schema.openAPIV3Schema : undefined;
      if (!schema) errs.push(fieldErr.invalid(vp.child("selectableFields").toString(), "", "selectableFields may only be set when version.schema.openAPIV3Schema is not included"));
      else errs.push(...validateSelectableFields(v.selectableFields, schema, vp.child("selectableFields")));
    }
  });
  if (!unique) errs.push(fieldErr.invalid(spec.child("versions").toString(), versionsLiteral(c), "must contain unique version names"));
  if (storageCount !== 1) errs.push(fieldErr.invalid(spec.child("versions").toString(), versionsLiteral(c), "must have exactly one version marked as storage version"));

  const names = spec.child("names");
  for (const k of ["plural", "singular", "kind", "listKind"]) if (!str(c.names[k])) errs.push(fieldErr.required(names.child(k).toString()));
  errs.push(...validateNames(c.names, names));

  const anyStatus = isObj(c.subresources?.status) || c.versions.some((v) => isObj(v.subresources?.status));
  if (c.validation && isObj(c.validation.openAPIV3Schema)) errs.push(...validateVersionSchema(c.validation.openAPIV3Schema, anyStatus, spec.child("validation")));
  errs.push(...validateSubresources(c.subresources, spec.child("subresources")));
  (c.columns ?? []).forEach((col, j) => errs.push(...validateColumn(col, spec.child("additionalPrinterColumns").index(j))));
  if (c.selectableFields) {
    const schema = c.validation && isObj(c.validation.openAPIV3Schema) ? c.validation.openAPIV3Schema : undefined;
    if (!schema) errs.push(fieldErr.invalid(spec.child("selectableFields").toString(), "", "selectableFields may only be set when validations.schema is included"));
    else errs.push(...validateSelectableFields(c.selectableFields, schema, spec.child("selectableFields")));
  }
  errs.push(...validateConversion(c, spec.child("conversion")));
  return errs;
}

function simpleJsonPath(s: string, p: FieldPath): FieldError[] {
  if (s.length === 0) return [fieldErr.invalid(p.toString(), s, "must not be empty")];
  if (s[0] !== ".") return [fieldErr.invalid(p.toString(), s, "must be a simple json path starting with .")];
  return [];
}

function validateSubresources(sr: Obj | undefined, p: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  const scale = objOr(sr?.scale);
  if (!scale) return errs;
  const check = (key: string, prefixes: string[], what: string, required: boolean): void => {
    const path = p.child(`scale.${key}`);
    const v = str(scale[key]);
    if (!v) {
      if (required) errs.push(fieldErr.required(path.toString()));
      return;
    }
    const bad = simpleJsonPath(v, path);
    if (bad.length) errs.push(...bad);
    else if (!prefixes.some((x) => v.startsWith(x))) errs.push(fieldErr.invalid(path.toString(), v, `should be a json path under ${what}`));
  };
  check("specReplicasPath", [".spec."], ".spec", true);
  check("statusReplicasPath", [".status."], ".status", true);
  check("labelSelectorPath", [".spec.", ".status."], "either .spec or .status", false);
  return errs;
}

const COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"];

function validateColumn(col: Obj, p: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  if (!str(col.name)) errs.push(fieldErr.required(p.child("name").toString()));
  const type = str(col.type);
  if (!type) errs.push(fieldErr.required(p.child("type").toString(), `must be one of ${COLUMN_TYPES.join(",")}`));
  else if (!COLUMN_TYPES.includes(type)) errs.push(fieldErr.invalid(p.child("type").toString(), type, `must be one of ${COLUMN_TYPES.join(",")}`));
  const format = str(col.format);
  if (format && !COLUMN_FORMATS.includes(format)) errs.push(fieldErr.invalid(p.child("format").toString(), format, `must be one of ${COLUMN_FORMATS.join(",")}`));
  const jp = str(col.jsonPath);
  if (!jp) errs.push(fieldErr.required(p.child("JSONPath").toString()));
  else errs.push(...simpleJsonPath(jp, p.child("JSONPath")));
  return errs;
}

const MAX_SELECTABLE_FIELDS = 8;

function validateSelectableFields(fields: Obj[], schema: Schema, p: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  fields.forEach((sf, i) => {
    const fp = p.index(i).child("jsonPath");
    const jp = str(sf.jsonPath);
    if (!jp) return void errs.push(fieldErr.required(fp.toString()));
    const problem = validFieldPath(schema, jp, false);
    if (problem) return void errs.push(fieldErr.invalid(fp.toString(), jp, `is an invalid path: ${problem}`));
    if (jp.startsWith(".metadata")) errs.push(fieldErr.invalid(fp.toString(), jp, "must not point to fields in metadata"));
    if (!["string", "boolean", "integer"].includes(typeOf(resolve(schema, jp)))) {
      errs.push(fieldErr.invalid(fp.toString(), jp, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."));
    }
    if (seen.has(jp)) errs.push(fieldErr.duplicate(fp.toString(), jp));
    seen.add(jp);
  });
  if (seen.size > MAX_SELECTABLE_FIELDS) errs.push(fieldErr.tooMany(p.toString(), seen.size, MAX_SELECTABLE_FIELDS));
  return errs;
}

function resolve(schema: Schema, jsonPath: string): Schema | undefined {
  let cur: Schema | undefined = schema;
  for (const k of jsonPath.replace(/^\./, "").split(".")) cur = cur && isObj(cur.properties) ? (cur.properties as Record<string, Schema>)[k] : undefined;
  return cur;
}

function validateConversion(c: Internal, p: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  const conv = c.conversion;
  if (!conv) return errs;
  const strategy = str(conv.strategy);
  if (!strategy) errs.push(fieldErr.required(p.child("strategy").toString()));
  else if (strategy !== "None" && strategy !== "Webhook") errs.push(fieldErr.notSupported(p.child("strategy").toString(), strategy, ["None", "Webhook"]));
  const webhook = objOr(conv.webhook);
  const clientConfig = objOr(webhook?.clientConfig);
  const reviewVersions = Array.isArray(webhook?.conversionReviewVersions) ? (webhook.conversionReviewVersions as string[]) : [];
  if (strategy === "Webhook") {
    if (!clientConfig) errs.push(fieldErr.required(p.child("webhookClientConfig").toString(), "required when strategy is set to Webhook"));
    else if ((clientConfig.url === undefined) === (clientConfig.service === undefined)) errs.push(fieldErr.required(p.child("webhookClientConfig").toString(), "exactly one of url or service is required"));
    if (!reviewVersions.length) errs.push(fieldErr.required(p.child("conversionReviewVersions").toString()));
    else if (!reviewVersions.some((v) => v === "v1" || v === "v1beta1")) errs.push(fieldErr.invalid(p.child("conversionReviewVersions").toString(), reviewVersions, "must include at least one of v1, v1beta1"));
  } else {
    if (clientConfig) errs.push(fieldErr.forbidden(p.child("webhookClientConfig").toString(), "should not be set when strategy is not set to Webhook"));
    if (reviewVersions.length) errs.push(fieldErr.forbidden(p.child("conversionReviewVersions").toString(), "should not be set when strategy is not set to Webhook"));
  }
  return errs;
}

// ---- status and update -----------------------------------------------------------------------------

function validateStoredVersions(c: Internal): FieldError[] {
  const p = FieldPath.root("status").child("storedVersions");
  const stored = new GoLiteral(`[]string{${c.storedVersions.map((v) => JSON.stringify(v)).join(", ")}}`);
  if (!c.storedVersions.length) return [fieldErr.invalid(p.toString(), stored, "must have at least one stored version")];
  const errs: FieldError[] = [];
  const remaining = new Map(c.storedVersions.map((v, i) => [v, i]));
  for (const v of c.versions) {
    if (v.storage && !remaining.has(v.name)) errs.push(fieldErr.invalid(p.toString(), stored, `must have the storage version ${v.name}`));
    remaining.delete(v.name);
  }
  for (const [v, i] of remaining) {
    errs.push(fieldErr.invalid(p.index(i).toString(), v, `missing from spec.versions; ${v} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in ${v} and removes ${v} from status.storedVersions`));
  }
  return errs;
}

function validateUpdate(c: Internal, old: Internal, oldObj: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const spec = FieldPath.root("spec");
  const immutable = (p: string, a: unknown, b: unknown): void => {
    if (!deepEqual(a, b)) errs.push(fieldErr.invalid(p, a, "field is immutable"));
  };
  const established = (Array.isArray(objOr(oldObj.status)?.conditions) ? (objOr(oldObj.status)!.conditions as Obj[]) : []).some((x) => x.type === "Established" && x.status === "True");
  if (established) {
    immutable(spec.child("scope").toString(), c.scope, old.scope);
    immutable(spec.child("names", "kind").toString(), c.names.kind, old.names.kind);
  }
  immutable(spec.child("group").toString(), c.group, old.group);
  immutable(spec.child("names", "plural").toString(), c.names.plural, old.names.plural);
  return errs;
}
