/**
 * The scale subresource's own checks on a custom object
 * (`customResourceValidator.ValidateScaleSpec` / `ValidateScaleStatus`): the
 * replica paths must hold integers, read with `unstructured.NestedInt64`,
 * whose error text the cause repeats. The cause's field is the path as
 * written in the CRD, leading dot included.
 */
import { isObj, type Obj } from "../fields.js";
import { fieldErr, type FieldError } from "./errors.js";

const MAX_INT32 = 2147483647;

/** Go's `%T` of a decoded JSON value. */
function goType(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int64" : "float64";
  if (Array.isArray(v)) return "[]interface {}";
  if (isObj(v)) return "map[string]interface {}";
  return "<nil>";
}

/** Reads the value at a `.a.b` path; `{error}` when a step is not a map. */
function nested(obj: Obj, jsonPath: string): { value?: unknown; error?: string } {
  const parts = jsonPath.replace(/^\./, "").split(".");
  let cur: unknown = obj;
  for (let i = 0; i < parts.length; i++) {
    if (!isObj(cur)) return { error: `.${parts.slice(0, i).join(".")} accessor error: ${String(cur)} is of the type ${goType(cur)}, expected map[string]interface{}` };
    cur = cur[parts[i]!];
    if (cur === undefined) return {};
  }
  return { value: cur };
}

function replicasAt(obj: Obj, jsonPath: string, out: FieldError[]): void {
  const { value, error } = nested(obj, jsonPath);
  if (error) return void out.push(fieldErr.invalid(jsonPath, 0, error));
  if (value === undefined || value === null) return;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    out.push(fieldErr.invalid(jsonPath, 0, `${jsonPath} accessor error: ${String(value)} is of the type ${goType(value)}, expected int64`));
  } else if (value < 0) out.push(fieldErr.invalid(jsonPath, value, "should be a non-negative integer"));
  else if (value > MAX_INT32) out.push(fieldErr.invalid(jsonPath, value, `should be less than or equal to ${MAX_INT32}`));
}

export interface ScaleSpec {
  specReplicasPath?: string;
  statusReplicasPath?: string;
  labelSelectorPath?: string;
}

export function validateScaleSpec(obj: Obj, scale: ScaleSpec | undefined): FieldError[] {
  const out: FieldError[] = [];
  if (scale?.specReplicasPath) replicasAt(obj, scale.specReplicasPath, out);
  return out;
}

export function validateScaleStatus(obj: Obj, scale: ScaleSpec | undefined): FieldError[] {
  const out: FieldError[] = [];
  if (scale?.statusReplicasPath) replicasAt(obj, scale.statusReplicasPath, out);
  if (scale?.labelSelectorPath) {
    const { value, error } = nested(obj, scale.labelSelectorPath);
    if (error) out.push(fieldErr.invalid(scale.labelSelectorPath, "", error));
    else if (value !== undefined && value !== null && typeof value !== "string")
      out.push(fieldErr.invalid(scale.labelSelectorPath, "", `${scale.labelSelectorPath} accessor error: ${String(value)} is of the type ${goType(value)}, expected string`));
  }
  return out;
}
