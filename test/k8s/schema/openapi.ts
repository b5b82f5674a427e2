/**
 * The CRD-time checks of a version's OpenAPI schema
 * (`validateCustomResourceDefinitionValidation` and
 * `ValidateCustomResourceDefinitionOpenAPISchema` in apiextensions
 * validation.go): structural invariants, defaults that validate, the
 * keywords Kubernetes does not support, list and map types, and the
 * `x-kubernetes-validations` rules (compiled, cost-estimated, and `oldSelf`
 * only where old and new values correlate).
 */
import { clone, isObj } from "../fields.js";
import { compileRules, maxItemsOf } from "./cel.js";
import type { FieldPath } from "./errors.js";
import { fieldErr, GoLiteral, type FieldError } from "./errors.js";
import { prune } from "./prune.js";
import { validateRules, validFieldPath } from "./rules.js";
import { additional, embedded, items, listType, mapKeys, props, type Schema, typeOf, type ValidationRule } from "./schema.js";
import { validateStructural } from "./structural.js";
import { validateValue } from "./values.js";
import { validateListTypes } from "./listtype.js";

/** celconfig.PerCallLimit-derived limits kube-apiserver enforces at CRD write time. */
export const STATIC_ESTIMATED_COST_LIMIT = 10_000_000;
export const STATIC_ESTIMATED_CRD_COST_LIMIT = 100_000_000;

const OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"];
const SUPPORTED_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];
const ROOT_ALLOWED_WITH_STATUS = new Set([
  "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
  "maxItems", "minItems", "uniqueItems", "multipleOf", "required", "items", "properties", "externalDocs", "example",
  "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
]);

interface Ctx {
  allowDefaults: boolean;
  disallowDefaultsReason?: string;
  insideResourceMeta: boolean;
  uncorrelatable?: FieldPath;
  /** Null when CEL is not checked (the schema is not structural or its defaults are invalid). */
  cel: { cardinality: number } | null;
}

interface Cost {
  total: number;
  mostExpensive: { path: string; cost: number }[];
}

/** Checks the schema of a version (or the hoisted top-level one) at `path` (`spec.validation` or `spec.versions[i].schema`). */
export function validateVersionSchema(schema: Schema, statusEnabled: boolean, path: FieldPath): FieldError[] {
  const errs: FieldError[] = [];
  const root = path.child("openAPIV3Schema");
  if (statusEnabled) {
    for (const [k, v] of Object.entries(schema)) {
      if (v === undefined || v === null || v === false || v === "" || (Array.isArray(v) && v.length === 0)) continue;
      if (k === "type") {
        if (v !== "object") {
          errs.push(fieldErr.invalid(root.child("type").toString(), v, `only "object" is allowed as the type at the root of the schema if the status subresource is enabled`));
          break;
        }
        continue;
      }
      if (!ROOT_ALLOWED_WITH_STATUS.has(k)) {
        errs.push(fieldErr.invalid(root.toString(), new GoLiteral("apiextensions.JSONSchemaProps{...}"), "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled"));
        break;
      }
    }
  }
  if (schema.nullable === true) errs.push(fieldErr.forbidden(root.child("nullable").toString(), "nullable cannot be true at the root"));

  let celEnabled = false;
  const structural = validateStructural(schema, root);
  if (structural.length) errs.push(...structural);
  else {
    const defaults = validateDefaults(schema, root);
    if (defaults.length) errs.push(...defaults);
    else celEnabled = true;
  }
  const cost: Cost = { total: 0, mostExpensive: [] };
  const { schemaErrors, celErrors } = walk(schema, root, { allowDefaults: true, insideResourceMeta: false, cel: celEnabled ? { cardinality: 1 } : null }, true, cost);
  errs.push(...schemaErrors, ...celErrors);
  if (celEnabled && cost.total > STATIC_ESTIMATED_CRD_COST_LIMIT) {
    for (const e of cost.mostExpensive) errs.push(fieldErr.forbidden(e.path, "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"));
    errs.push(fieldErr.forbidden(root.toString(), costMessage("x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema", cost.total, STATIC_ESTIMATED_CRD_COST_LIMIT)));
  }
  return errs;
}

function costMessage(what: string, cost: number, limit: number): string {
  const factor = cost / limit;
  const f = factor > 100 ? "more than 100x" : factor < 1.5 ? `${factor.toFixed(6)}x` : `${factor.toFixed(1)}x`;
  return `${what} exceeds budget by factor of ${f} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)`;
}

/** Go's `%#v` of a ValidationRule, as the real server prints it in a cause. */
function ruleLiteral(r: ValidationRule): GoLiteral {
  const reason = r.reason === undefined ? "(*apiextensions.FieldValueErrorReason)(nil)" : "(*apiextensions.FieldValueErrorReason)(<volatile>)";
  const oldSelf = r.optionalOldSelf === undefined ? "(*bool)(nil)" : `(*bool)(<volatile>)`;
  return new GoLiteral(
    `apiextensions.ValidationRule{Rule:${JSON.stringify(r.rule ?? "")}, Message:${JSON.stringify(r.message ?? "")}, MessageExpression:${JSON.stringify(r.messageExpression ?? "")}, Reason:${reason}, FieldPath:${JSON.stringify(r.fieldPath ?? "")}, OptionalOldSelf:${oldSelf}}`,
  );
}

function walk(s: Schema, path: FieldPath, ctx: Ctx, isRoot: boolean, cost: Cost): { schemaErrors: FieldError[]; celErrors: FieldError[] } {
  const schemaErrors: FieldError[] = [];
  const celErrors: FieldError[] = [];
  const merge = (r: { schemaErrors: FieldError[]; celErrors: FieldError[] }): void => {
    schemaErrors.push(...r.schemaErrors);
    celErrors.push(...r.celErrors);
  };
  const at = (...names: string[]): string => path.child(...names).toString();
  const type = typeOf(s);

  // specStandardValidatorV3.validate
  if (type && !OPENAPI_TYPES.includes(type)) schemaErrors.push(fieldErr.notSupported(at("type"), type, OPENAPI_TYPES));
  if (s.default !== undefined && !ctx.allowDefaults) schemaErrors.push(fieldErr.forbidden(at("default"), `must not be set${ctx.disallowDefaultsReason ? ` ${ctx.disallowDefaultsReason}` : ""}`));
  if (s.id) schemaErrors.push(fieldErr.forbidden(at("id"), "id is not supported"));
  if (s.additionalItems !== undefined) schemaErrors.push(fieldErr.forbidden(at("additionalItems"), "additionalItems is not supported"));
  if (isObj(s.patternProperties) && Object.keys(s.patternProperties).length) schemaErrors.push(fieldErr.forbidden(at("patternProperties"), "patternProperties is not supported"));
  if (isObj(s.definitions) && Object.keys(s.definitions).length) schemaErrors.push(fieldErr.forbidden(at("definitions"), "definitions is not supported"));
  if (s.dependencies !== undefined) schemaErrors.push(fieldErr.forbidden(at("dependencies"), "dependencies is not supported"));
  if (s.$ref !== undefined) schemaErrors.push(fieldErr.forbidden(at("$ref"), "$ref is not supported"));
  if (type === "null") schemaErrors.push(fieldErr.forbidden(at("type"), "type cannot be set to null, use nullable as an alternative"));
  if (Array.isArray(s.items)) schemaErrors.push(fieldErr.forbidden(at("items"), "items must be a schema object and not an array"));
  if (ctx.insideResourceMeta && embedded(s)) schemaErrors.push(fieldErr.forbidden(at("x-kubernetes-embedded-resource"), "must not be used inside of resource meta"));

  if (s.uniqueItems === true) schemaErrors.push(fieldErr.forbidden(at("uniqueItems"), "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"));

  const ps = props(s);
  if (s.additionalProperties !== undefined) {
    if (Object.keys(ps).length && (s.additionalProperties === false || isObj(s.additionalProperties))) {
      schemaErrors.push(fieldErr.forbidden(at("additionalProperties"), "additionalProperties and properties are mutual exclusive"));
    }
    const ap = additional(s);
    if (ap) {
      const sub: Ctx = ctx.insideResourceMeta ? { ...ctx, allowDefaults: false, disallowDefaultsReason: "inside additionalProperties applying to object metadata" } : { ...ctx };
      sub.cel = ctx.cel ? { cardinality: ctx.cel.cardinality * maxItemsOf(s) } : null;
      merge(walk(ap, path.child("additionalProperties"), sub, false, cost));
    }
  }
  for (const [k, v] of Object.entries(ps)) {
    let sub: Ctx = { ...ctx };
    if (s["x-kubernetes-map-type"] === "atomic" && !sub.uncorrelatable) sub.uncorrelatable = path;
    if ((isRoot || embedded(s)) && ["metadata", "kind", "apiVersion"].includes(k)) {
      sub.insideResourceMeta = true;
      if (isRoot) sub = { ...sub, allowDefaults: false, disallowDefaultsReason: `in top-level ${k}` };
    }
    merge(walk(v, path.child("properties").key(k), sub, false, cost));
  }
  const noCel = (x: Schema, p: FieldPath): void => merge(walk(x, p, { ...ctx, cel: null }, false, cost));
  if (isObj(s.not)) noCel(s.not, path.child("not"));
  for (const j of ["allOf", "oneOf", "anyOf"]) if (Array.isArray(s[j])) (s[j] as Schema[]).forEach((x, i) => noCel(x, path.child(j).index(i)));

  const is = items(s);
  if (is) {
    const sub: Ctx = { ...ctx };
    if (listType(s) !== "map" && !sub.uncorrelatable) sub.uncorrelatable = path;
    sub.cel = ctx.cel ? { cardinality: ctx.cel.cardinality * maxItemsOf(s) } : null;
    merge(walk(is, path.child("items"), sub, false, cost));
  }

  if (s["x-kubernetes-preserve-unknown-fields"] === false) schemaErrors.push(fieldErr.invalid(at("x-kubernetes-preserve-unknown-fields"), false, "must be true or undefined"));
  const mapType = s["x-kubernetes-map-type"];
  if (mapType !== undefined && type !== "object") {
    if (!type) schemaErrors.push(fieldErr.required(at("type"), "must be object if x-kubernetes-map-type is specified"));
    else schemaErrors.push(fieldErr.invalid(at("type"), type, "must be object if x-kubernetes-map-type is specified"));
  }
  if (mapType !== undefined && mapType !== "atomic" && mapType !== "granular") schemaErrors.push(fieldErr.notSupported(at("x-kubernetes-map-type"), mapType, ["atomic", "granular"]));
  const lt = listType(s);
  if (s["x-kubernetes-list-type"] !== undefined && type !== "array") {
    if (!type) schemaErrors.push(fieldErr.required(at("type"), "must be array if x-kubernetes-list-type is specified"));
    else schemaErrors.push(fieldErr.invalid(at("type"), type, "must be array if x-kubernetes-list-type is specified"));
  } else if (lt === "set" && is) {
    if (typeOf(is) === "array" && listType(is) !== undefined && listType(is) !== "atomic") {
      schemaErrors.push(fieldErr.invalid(at("items", "x-kubernetes-list-type"), listType(is), "must be atomic as item of a list with x-kubernetes-list-type=set"));
    }
    if (typeOf(is) === "object" && is["x-kubernetes-map-type"] !== "atomic") {
      schemaErrors.push(fieldErr.invalid(at("items", "x-kubernetes-map-type"), is["x-kubernetes-map-type"] ?? null, "must be atomic as item of a list with x-kubernetes-list-type=set"));
    }
  }
  if (lt !== undefined && !["atomic", "set", "map"].includes(lt)) schemaErrors.push(fieldErr.notSupported(at("x-kubernetes-list-type"), lt, ["atomic", "set", "map"]));
  const keys = mapKeys(s);
  if (keys.length) {
    if (lt === undefined) schemaErrors.push(fieldErr.required(at("x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"));
    else if (lt !== "map") schemaErrors.push(fieldErr.invalid(at("x-kubernetes-list-type"), lt, "must be map if x-kubernetes-list-map-keys is non-empty"));
  }
  if (lt === "map") {
    if (!keys.length) schemaErrors.push(fieldErr.required(at("x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"));
    if (s.items === undefined) schemaErrors.push(fieldErr.required(at("items"), "must have a schema if x-kubernetes-list-type is map"));
    if (is && typeOf(is) !== "object") schemaErrors.push(fieldErr.invalid(at("items", "type"), typeOf(is), "must be object if parent array's x-kubernetes-list-type is map"));
    if (is && typeOf(is) === "object") {
      const seen = new Set<string>();
      for (const k of keys) {
        const ks = props(is)[k];
        if (ks) {
          if (typeOf(ks) === "array" || typeOf(ks) === "object") schemaErrors.push(fieldErr.invalid(path.child("items", "properties").key(k).child("type").toString(), typeOf(is), "must be a scalar type if parent array's x-kubernetes-list-type is map"));
        } else schemaErrors.push(fieldErr.invalid(at("x-kubernetes-list-map-keys"), keys, "entries must all be names of item properties"));
        if (seen.has(k)) schemaErrors.push(fieldErr.invalid(at("x-kubernetes-list-map-keys"), keys, "must not contain duplicate entries"));
        seen.add(k);
      }
    }
  }
  if ((lt === "set" || lt === "map") && is) {
    if (is.nullable === true) schemaErrors.push(fieldErr.forbidden(at("items", "nullable"), `cannot be nullable when x-kubernetes-list-type is ${lt}`));
    if (lt === "map") {
      const required = new Set(Array.isArray(is.required) ? (is.required as string[]) : []);
      for (const k of keys) {
        const ks = props(is)[k];
        if (!ks) continue;
        if (!required.has(k) && ks.default === undefined) schemaErrors.push(fieldErr.required(path.child("items", "properties").key(k).child("default").toString(), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"));
        if (ks.nullable === true) schemaErrors.push(fieldErr.forbidden(path.child("items", "properties").key(k).child("nullable").toString(), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"));
      }
    }
  }

  const rules = Array.isArray(s["x-kubernetes-validations"]) ? (s["x-kubernetes-validations"] as ValidationRule[]) : [];
  if (rules.length) {
    rules.forEach((rule, i) => {
      const rp = path.child("x-kubernetes-validations").index(i);
      const rule_ = typeof rule.rule === "string" ? rule.rule.trim() : "";
      const msg = typeof rule.message === "string" ? rule.message : "";
      if (!rule_) schemaErrors.push(fieldErr.required(rp.child("rule").toString(), "rule is not specified"));
      else if (msg.length > 0 && !msg.trim()) schemaErrors.push(fieldErr.invalid(rp.child("message").toString(), msg, "message must be non-empty if specified"));
      else if (/[\r\n]/.test(msg.trim())) schemaErrors.push(fieldErr.invalid(rp.child("message").toString(), msg, "message must not contain line breaks"));
      else if (/[\r\n]/.test(rule_) && !msg.trim()) schemaErrors.push(fieldErr.required(rp.child("message").toString(), "message must be specified if rule contains line breaks"));
      if (typeof rule.messageExpression === "string" && rule.messageExpression.length > 0 && !rule.messageExpression.trim()) {
        schemaErrors.push(fieldErr.required(rp.child("messageExpression").toString(), "messageExpression must be non-empty if specified"));
      }
      if (rule.reason !== undefined && !SUPPORTED_REASONS.includes(rule.reason)) schemaErrors.push(fieldErr.notSupported(rp.child("reason").toString(), rule.reason, SUPPORTED_REASONS));
      if (typeof rule.fieldPath === "string") {
        if (rule.fieldPath.length > 0 && !rule.fieldPath.trim()) schemaErrors.push(fieldErr.invalid(rp.child("fieldPath").toString(), rule.fieldPath, "fieldPath must be non-empty if specified"));
        if (/[\r\n]/.test(rule.fieldPath)) schemaErrors.push(fieldErr.invalid(rp.child("fieldPath").toString(), rule.fieldPath, "fieldPath must not contain line breaks"));
        if (rule.fieldPath.length > 0 && validFieldPath(s, rule.fieldPath)) schemaErrors.push(fieldErr.invalid(rp.child("fieldPath").toString(), rule.fieldPath, "fieldPath must be a valid path"));
      }
    });
    // CEL is compiled only when nothing is wrong with the schema at this node or below it (as the real server does).
    if (!schemaErrors.length && ctx.cel) {
      compileRules(s).forEach((cr, i) => {
        const rp = path.child("x-kubernetes-validations").index(i);
        const ruleCost = cr.cost * ctx.cel!.cardinality;
        if (ruleCost > STATIC_ESTIMATED_COST_LIMIT) celErrors.push(fieldErr.forbidden(rp.child("rule").toString(), costMessage("estimated rule cost", ruleCost, STATIC_ESTIMATED_COST_LIMIT)));
        observe(cost, rp.child("rule").toString(), ruleCost);
        if (cr.error?.on === "rule") celErrors.push(fieldErr.invalid(rp.child("rule").toString(), ruleLiteral(cr.rule), cr.error.detail));
        if (cr.error?.on === "messageExpression") celErrors.push(fieldErr.invalid(rp.child("messageExpression").toString(), ruleLiteral(cr.rule), cr.error.detail));
        else if (cr.message) {
          const messageCost = cr.messageCost * ctx.cel!.cardinality;
          if (messageCost > STATIC_ESTIMATED_COST_LIMIT) celErrors.push(fieldErr.forbidden(rp.child("messageExpression").toString(), costMessage("estimated messageExpression cost", messageCost, STATIC_ESTIMATED_COST_LIMIT)));
          observe(cost, rp.child("messageExpression").toString(), messageCost);
        }
        if (cr.usesOldSelf) {
          if (ctx.uncorrelatable) celErrors.push(fieldErr.invalid(rp.child("rule").toString(), cr.rule.rule, `oldSelf cannot be used on the uncorrelatable portion of the schema within ${ctx.uncorrelatable.toString()}`));
        } else if (cr.rule.optionalOldSelf !== undefined && !cr.error) {
          celErrors.push(fieldErr.invalid(rp.child("optionalOldSelf").toString(), cr.rule.optionalOldSelf, "may not be set if oldSelf is not used in rule"));
        }
      });
    }
  }
  return { schemaErrors, celErrors };
}

/** TotalCost.ObserveExpressionCost: sums every rule; remembers the four most expensive of those above 1% of the total limit. */
function observe(cost: Cost, path: string, c: number): void {
  cost.total += c;
  if (c < STATIC_ESTIMATED_CRD_COST_LIMIT / 100) return;
  cost.mostExpensive.push({ path, cost: c });
  cost.mostExpensive.sort((a, b) => b.cost - a.cost);
  cost.mostExpensive.length = Math.min(cost.mostExpensive.length, 4);
}

/**
 * structuraldefaulting.ValidateDefaults: each default must survive pruning,
 * validate against its own schema (values, list types, CEL rules) and not sit
 * in root metadata.
 */
export function validateDefaults(s: Schema, path: FieldPath, isRoot = true): FieldError[] {
  const out: FieldError[] = [];
  if (s.default !== undefined && !isRoot) {
    const dp = path.child("default");
    const pruned = clone(s.default);
    if (isObj(pruned) && prune(pruned, s).length) out.push(fieldErr.invalid(dp.toString(), s.default, "must not have unknown fields"));
    else {
      const reroot = (e: FieldError): FieldError => ({ ...e, field: e.field ? `${dp.toString()}.${e.field}` : dp.toString() });
      const valueErrs = validateValue(s, s.default, "").map(reroot);
      out.push(...valueErrs);
      if (!valueErrs.length) {
        out.push(...validateListTypes(s.default, s, dp));
        const celErrs = validateRules(s, s.default, undefined, false, null).map(reroot);
        out.push(...celErrs);
      }
    }
  }
  for (const [k, v] of Object.entries(props(s))) {
    if (isRoot && k === "metadata") continue;
    out.push(...validateDefaults(v, path.child("properties").key(k), false));
  }
  const is = items(s);
  if (is) out.push(...validateDefaults(is, path.child("items"), false));
  const ap = additional(s);
  if (ap) out.push(...validateDefaults(ap, path.child("additionalProperties"), false));
  return out;
}
