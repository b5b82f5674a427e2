/**
 * OpenAPI value validation of a custom object (kube-openapi's validator as
 * kube-apiserver runs it, and `kubeOpenAPIResultToFieldErrors` turning its
 * results into field errors). Paths are joined the way kube-openapi names
 * them (`spec.ports[1].name`); messages carry that name ("... in body ...").
 */
import { isObj } from "../fields.js";
import { fieldErr, type FieldError } from "./errors.js";
import { additional, intOrString, items, jsonType, preserves, props, type Schema, typeOf } from "./schema.js";

const join = (base: string, k: string): string => (base ? `${base}.${k}` : k);

/** Validates `value` named `name` (`spec.replicas`; "" for the value itself, whose errors then have no field). */
export function validateValue(s: Schema, value: unknown, name: string, out: FieldError[] = []): FieldError[] {
  const where = name;
  const at = name === "" ? null : name;
  if (value === undefined) return out;
  if (value === null) {
    if (s.nullable === true) return out;
    if (typeOf(s) || intOrString(s)) {
      out.push(fieldErr.typeInvalid(at, "null", `${where} in body must be of type ${expectedType(s)}: "null"`));
      return out;
    }
    return out;
  }
  const actual = jsonType(value);
  if (intOrString(s)) {
    if (actual !== "integer" && actual !== "string") {
      out.push(fieldErr.typeInvalid(at, actual, `${where} in body must be of type integer,string: "${actual}"`));
      return out;
    }
  } else if (typeOf(s) && !typeMatches(typeOf(s), actual)) {
    out.push(fieldErr.typeInvalid(at, actual, `${where} in body must be of type ${typeOf(s)}: "${actual}"`));
    return out;
  }

  if (Array.isArray(s.enum) && !s.enum.some((e) => sameJson(e, value))) out.push(fieldErr.notSupported(at, value, s.enum));

  if (typeof value === "number") numberChecks(s, value, where, at, out);
  if (typeof value === "string") stringChecks(s, value, where, at, out);
  if (Array.isArray(value)) {
    if (typeof s.maxItems === "number" && value.length > s.maxItems) out.push(fieldErr.tooMany(at, value.length, s.maxItems));
    if (typeof s.minItems === "number" && value.length < s.minItems) out.push(fieldErr.invalid(at, value, `${where} in body should have at least ${s.minItems} items`));
    const is = items(s);
    if (is) value.forEach((v, i) => validateValue(is, v, `${where}[${i}]`, out));
  }
  if (isObj(value)) {
    const n = Object.keys(value).length;
    if (typeof s.maxProperties === "number" && n > s.maxProperties) out.push(fieldErr.tooMany(at, n, s.maxProperties));
    if (typeof s.minProperties === "number" && n < s.minProperties) out.push(fieldErr.invalid(at, value, `${where} in body should have at least ${s.minProperties} properties`));
    for (const r of Array.isArray(s.required) ? (s.required as string[]) : []) {
      if (!(r in value)) out.push(fieldErr.required(join(where, r)));
    }
    const ps = props(s);
    const ap = additional(s);
    for (const [k, v] of Object.entries(value)) {
      const sub = ps[k] ?? ap;
      if (sub) validateValue(sub, v, join(where, k), out);
      else if (s.additionalProperties === false && !preserves(s)) out.push(fieldErr.forbidden(join(where, k), `${join(where, k)} in body is a forbidden property`));
    }
  }
  junctors(s, value, where, at, out);
  return out;
}

function expectedType(s: Schema): string {
  return intOrString(s) ? "integer,string" : typeOf(s);
}

function typeMatches(want: string, actual: string): boolean {
  if (want === actual) return true;
  return want === "number" && actual === "integer";
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function numberChecks(s: Schema, v: number, where: string, at: string | null, out: FieldError[]): void {
  if (typeof s.maximum === "number") {
    if (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum)
      out.push(fieldErr.invalid(at, v, `${where} in body should be less than ${s.exclusiveMaximum === true ? "" : "or equal to "}${s.maximum}`));
  }
  if (typeof s.minimum === "number") {
    if (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum)
      out.push(fieldErr.invalid(at, v, `${where} in body should be greater than ${s.exclusiveMinimum === true ? "" : "or equal to "}${s.minimum}`));
  }
  if (typeof s.multipleOf === "number" && s.multipleOf !== 0 && !Number.isInteger(v / s.multipleOf)) out.push(fieldErr.invalid(at, v, `${where} in body should be a multiple of ${s.multipleOf}`));
}

function stringChecks(s: Schema, v: string, where: string, at: string | null, out: FieldError[]): void {
  // kube-openapi counts characters (runes), not UTF-16 units.
  const len = [...v].length;
  if (typeof s.maxLength === "number" && len > s.maxLength) out.push(fieldErr.tooLong(at, s.maxLength));
  if (typeof s.minLength === "number" && len < s.minLength) out.push(fieldErr.invalid(at, v, `${where} in body should be at least ${s.minLength} chars long`));
  if (typeof s.pattern === "string") {
    const re = compilePattern(s.pattern);
    if (re && !re.test(v)) out.push(fieldErr.invalid(at, v, `${where} in body should match '${s.pattern}'`));
  }
  if (typeof s.format === "string" && !formatOk(s.format, v)) out.push(fieldErr.invalid(at, v, `${where} in body must be of type ${s.format}: ${JSON.stringify(v)}`));
}

const patterns = new Map<string, RegExp | null>();
/** Go RE2 patterns are close enough to JavaScript's `u` flavour for the patterns CRDs use; an unparsable one matches anything (it was refused at CRD creation). */
export function compilePattern(p: string): RegExp | null {
  if (!patterns.has(p)) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(p, "u");
    } catch {
      re = null;
    }
    patterns.set(p, re);
  }
  return patterns.get(p)!;
}

// The formats Kubernetes' strfmt registry checks that CRDs commonly use; unknown formats are accepted, as the real server does.
const FORMATS: Record<string, RegExp> = {
  // strfmt.IsDateTime: a date, "t" (either case), then hh:mm:ss[.frac] and z or an offset.
  "date-time": /^\d{4}-\d{2}-\d{2}[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  uuid: /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/,
};
function formatOk(format: string, v: string): boolean {
  const re = FORMATS[format];
  if (!re) return true;
  if (!re.test(v)) return false;
  if (format !== "date" && format !== "date-time") return true;
  // A real calendar day: 2024-02-30 matches the pattern but is no date.
  const [y, m, d] = v.slice(0, 10).split("-").map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

function junctors(s: Schema, value: unknown, where: string, at: string | null, out: FieldError[]): void {
  const list = (k: string): Schema[] => (Array.isArray(s[k]) ? (s[k] as Schema[]) : []);
  for (const sub of list("allOf")) validateValue(sub, value, where, out);
  const passes = (sub: Schema): boolean => validateValue(sub, value, where, []).length === 0;
  const anyOf = list("anyOf");
  if (anyOf.length && !intOrStringPair(anyOf) && !anyOf.some(passes)) out.push(fieldErr.invalid(at, value, `${where} in body must validate at least one schema (anyOf)`));
  const oneOf = list("oneOf");
  if (oneOf.length && oneOf.filter(passes).length !== 1) out.push(fieldErr.invalid(at, value, `${where} in body must validate one and only one schema (oneOf)`));
  if (isObj(s.not) && passes(s.not)) out.push(fieldErr.invalid(at, value, `${where} in body must not validate the schema (not)`));
}

/** The `anyOf: [{type: integer}, {type: string}]` that accompanies x-kubernetes-int-or-string. */
function intOrStringPair(anyOf: Schema[]): boolean {
  return anyOf.length === 2 && typeOf(anyOf[0]) === "integer" && typeOf(anyOf[1]) === "string";
}
