/**
 * Admission of a custom object (the custom resource handler's decoder and
 * `customResourceStrategy.Validate`/`ValidateUpdate`): unknown fields pruned
 * and reported, defaults applied, then OpenAPI value validation, the scale
 * replica paths, embedded resources, list-type invariants and, unless an error already makes the
 * object the wrong shape for them, the CEL rules. Updates ratchet: an error
 * on a value the update did not change is not reported.
 */
import { clone, deepEqual, isObj, pointerGet, type Obj } from "../fields.js";
import { applyDefaults } from "./defaults.js";
import { validateEmbedded } from "./embedded.js";
import { fieldErr, invalid, strictDecoding, type FieldError, FieldPath } from "./errors.js";
import { validateListTypes } from "./listtype.js";
import { prune } from "./prune.js";
import { validateRules } from "./rules.js";
import { validateScaleSpec, validateScaleStatus, type ScaleSpec } from "./scale.js";
import { props, versionSchema, versionSubresources } from "./schema.js";
import type { AdmitOptions, AdmitResult } from "./types.js";
import { validateValue } from "./values.js";

/** Error types after which the CEL rules are not run (strategy.go `hasBlockingErr`). */
const BLOCKING = new Set(["NotSupported", "Required", "TooLong", "TooMany", "TypeInvalid"]);

export function admitObject(crd: Obj, version: string, input: Obj, opts: AdmitOptions): AdmitResult {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const names = isObj(spec.names) ? spec.names : {};
  const kind = typeof names.kind === "string" ? names.kind : "Object";
  const group = typeof spec.group === "string" ? spec.group : "";
  const schema = versionSchema(crd, version);
  const subresources = versionSubresources(crd, version);
  const scale = isObj(subresources.scale) ? (subresources.scale as ScaleSpec) : undefined;
  const obj = clone(input);
  const warnings: string[] = [];
  if (!schema) return { obj, warnings };

  const unknown = prune(obj, schema);
  if (unknown.length && opts.fieldValidation === "Strict") return { obj, warnings, rejection: strictDecoding(kind, version, unknown) };
  if (opts.fieldValidation !== "Ignore") warnings.push(...unknown.map((u) => `unknown field ${JSON.stringify(u)}`));
  applyDefaults(obj, schema);

  const old = opts.old;
  let errs: FieldError[] = [];
  if (opts.subresource === "status") {
    const statusSchema = props(schema).status;
    if (statusSchema) errs.push(...validateValue(statusSchema, obj.status, "status"));
    errs.push(...validateScaleStatus(obj, scale));
  } else {
    errs.push(...validateValue(schema, obj, ""));
    errs.push(...validateScaleSpec(obj, scale));
    errs.push(...validateScaleStatus(obj, scale));
  }
  if (old) errs = errs.filter((e) => !unchanged(e, obj, old));
  errs.push(...atTopLevel(obj, schema, validateEmbedded));
  if (!old || validateListTypes(old, schema, FieldPath.root()).length === 0) errs.push(...atTopLevel(obj, schema, validateListTypes));
  if (errs.some((e) => BLOCKING.has(e.type))) {
    errs.push(fieldErr.invalid(null, null, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"));
  } else {
    errs.push(...validateRules(schema, obj, old, old !== undefined, null));
  }
  if (!errs.length) return { obj, warnings };
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : typeof meta.generateName === "string" ? meta.generateName : "";
  return { obj, warnings, rejection: invalid(`${kind}.${group}`, name, errs) };
}

/** Runs a check from each top-level field, so that paths come out as `spec.ports[1]`, not `.spec.ports[1]`. */
function atTopLevel(obj: Obj, schema: Obj, check: (v: unknown, s: Obj, p: FieldPath, out: FieldError[]) => FieldError[]): FieldError[] {
  const out: FieldError[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const sub = props(schema)[k];
    if (sub) check(v, sub, FieldPath.root(k), out);
  }
  return out;
}

/** Ratcheting: an error at a path whose value (for Required: whose parent) is the same in the old object. */
function unchanged(e: FieldError, obj: Obj, old: Obj): boolean {
  if (!e.field || e.field.startsWith(".")) return false;
  const path = e.field.split(/\.|(?=\[)/).map((s) => (s.startsWith("[") ? s.slice(1, -1) : s));
  const at = e.type === "Required" ? path.slice(0, -1) : path;
  return deepEqual(pointerGet(obj, at), pointerGet(old, at));
}
