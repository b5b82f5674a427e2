/**
 * field.Error from k8s.io/apimachinery, enough of it to answer as
 * kube-apiserver does: a typed error at a field path, rendered into the
 * `reason` and `message` of a Status cause.
 */
import type { Rejection, StatusCause } from "./types.js";

export type ErrorType = "Invalid" | "TypeInvalid" | "Required" | "Forbidden" | "NotSupported" | "TooMany" | "TooLong" | "Duplicate" | "NotFound" | "Internal";

/** One validation error. `field` is already rendered (`spec.ports[1]`); null renders as `<nil>`. */
export interface FieldError {
  type: ErrorType;
  field: string | null;
  /** The offending value; not printed for Required, Forbidden, TooLong and Internal. */
  value?: unknown;
  detail: string;
}

const TITLE: Record<ErrorType, string> = {
  Invalid: "Invalid value",
  TypeInvalid: "Invalid value",
  Required: "Required value",
  Forbidden: "Forbidden",
  NotSupported: "Unsupported value",
  TooMany: "Too many",
  TooLong: "Too long",
  Duplicate: "Duplicate value",
  NotFound: "Not found",
  Internal: "Internal error",
};

const REASON: Record<ErrorType, string> = {
  Invalid: "FieldValueInvalid",
  TypeInvalid: "FieldValueTypeInvalid",
  Required: "FieldValueRequired",
  Forbidden: "FieldValueForbidden",
  NotSupported: "FieldValueNotSupported",
  TooMany: "FieldValueTooMany",
  TooLong: "FieldValueTooLong",
  Duplicate: "FieldValueDuplicate",
  NotFound: "FieldValueNotFound",
  Internal: "InternalError",
};

/** Go's `%#v` of a JSON value, as field.Error prints values it has no simple printer for. */
export function goValue(v: unknown): string {
  if (v === null || v === undefined) return "interface {}(nil)";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return `[]interface {}{${v.map(goValue).join(", ")}}`;
  const entries = Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${goValue((v as Record<string, unknown>)[k])}`);
  return `map[string]interface {}{${entries.join(", ")}}`;
}

/** A value as field.Error's ErrorBody prints it: simple types plainly, strings quoted, nil as "null". */
function printValue(v: unknown): string {
  if (v === null || v === undefined) return `"null"`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof GoLiteral) return v.text;
  return JSON.stringify(v);
}

/** A value already rendered the way Go would print it (e.g. a struct with `%#v`). */
export class GoLiteral {
  constructor(readonly text: string) {}
}

const NO_VALUE: ReadonlySet<ErrorType> = new Set(["Required", "Forbidden", "TooLong", "Internal"]);

export function errorBody(e: FieldError): string {
  let s = TITLE[e.type];
  if (!NO_VALUE.has(e.type)) s += `: ${printValue(e.value)}`;
  if (e.detail) s += `: ${e.detail}`;
  return s;
}

export const fieldErr = {
  invalid: (field: string | null, value: unknown, detail: string): FieldError => ({ type: "Invalid", field, value, detail }),
  typeInvalid: (field: string | null, value: unknown, detail: string): FieldError => ({ type: "TypeInvalid", field, value, detail }),
  required: (field: string | null, detail = ""): FieldError => ({ type: "Required", field, detail }),
  forbidden: (field: string | null, detail: string): FieldError => ({ type: "Forbidden", field, detail }),
  notSupported: (field: string | null, value: unknown, allowed: readonly unknown[]): FieldError => ({
    type: "NotSupported",
    field,
    value,
    detail: allowed.length ? `supported values: ${allowed.map((a) => (typeof a === "string" ? JSON.stringify(a) : String(a))).join(", ")}` : "",
  }),
  tooMany: (field: string | null, actual: number, max: number): FieldError => ({ type: "TooMany", field, value: actual, detail: `must have at most ${max} items` }),
  tooLong: (field: string | null, max: number): FieldError => ({ type: "TooLong", field, detail: `may not be more than ${max} ${max === 1 ? "byte" : "bytes"}` }),
  duplicate: (field: string | null, value: unknown): FieldError => ({ type: "Duplicate", field, value: new GoLiteral(goValue(value)), detail: "" }),
  internal: (field: string | null, detail: string): FieldError => ({ type: "Internal", field, detail }),
};

export function toCause(e: FieldError): StatusCause {
  return { field: e.field ?? "<nil>", reason: REASON[e.type], message: errorBody(e) };
}

/** The 422 Status kube-apiserver answers for a list of field errors on `kind` `name`. */
export function invalid(qualifiedKind: string, name: string, errs: FieldError[]): Rejection {
  const texts = errs.map((e) => `${e.field ?? "<nil>"}: ${errorBody(e)}`);
  const summary = texts.length === 1 ? texts[0]! : `[${texts.join(", ")}]`;
  return { status: 422, reason: "Invalid", message: `${qualifiedKind} "${name}" is invalid: ${summary}`, causes: errs.map(toCause) };
}

/** The 400 Status of a strict decoding error (fieldValidation=Strict and unknown fields). */
export function strictDecoding(kind: string, version: string, unknown: string[]): Rejection {
  const list = unknown.map((u) => `unknown field ${JSON.stringify(u)}`).join(", ");
  return { status: 400, reason: "BadRequest", message: `${kind} in version ${JSON.stringify(version)} cannot be handled as a ${kind}: strict decoding error: ${list}`, causes: [] };
}

/** field.Path rendering: `.child`, `[index]`, `[key]`. */
export class FieldPath {
  private constructor(private readonly text: string) {}
  static root(name = ""): FieldPath {
    return new FieldPath(name);
  }
  child(...names: string[]): FieldPath {
    let t = this.text;
    for (const n of names) t = t ? `${t}.${n}` : n;
    return new FieldPath(t);
  }
  index(i: number): FieldPath {
    return new FieldPath(`${this.text}[${i}]`);
  }
  key(k: string): FieldPath {
    return new FieldPath(`${this.text}[${k}]`);
  }
  toString(): string {
    return this.text;
  }
}
