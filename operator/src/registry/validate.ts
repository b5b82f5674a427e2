import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import type { Json } from "@offload/sdk/internal";

/** One field of a run's `parameters` that breaks the task's registered input schema. */
export interface ParameterIssue {
  /** Where, from the request body's root: `parameters.tenant`, or `runs.3.parameters.tenant` in a batch. */
  path: string;
  message: string;
}

/**
 * Checks one run's parameters against a compiled input schema; answers the
 * issues (none: they match). `at` is the path of `parameters` in the body.
 */
export type ParameterCheck = (parameters: Json, at: string) => ParameterIssue[];

/** The draft every registered input schema is read as (what `z.toJSONSchema()` writes by default). */
export const INPUT_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema";

/** A registered input schema the run API cannot use: the registration naming it is refused. */
export class InputSchemaError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InputSchemaError";
  }
}

const AJV_OPTIONS = {
  // Every field that is wrong, not only the first: the 400 names them all.
  allErrors: true,
  // JSON Schema says unknown keywords are ignored; zod's .meta() may add some.
  strict: false,
  // In 2020-12 `format` is an annotation. zod writes a `pattern` beside most formats, which is the rule zod itself
  // applies; Ajv's own format rules differ from zod's and could refuse what the task accepts.
  validateFormats: false,
  // zod's patterns are JavaScript regular expressions without the u flag; read them as zod does.
  unicodeRegExp: false,
  // Gives each error its schema node, so a broken `pattern` of a `format` can be named by the format.
  verbose: true,
  logger: false,
  // 0.07 is a multiple of 0.01 to zod (it counts decimals) but not in floating point (7.000000000000001): compare as
  // zod does, to within a tolerance, rather than refuse amounts the task takes.
  multipleOfPrecision: 6,
} as const;

const metaChecker = new Ajv2020(AJV_OPTIONS);

/**
 * Compiles a task's input schema (JSON Schema draft 2020-12) into a check;
 * throws {@link InputSchemaError} saying why when it cannot.
 *
 * One Ajv instance per schema: a schema's `$id` then never collides with
 * another task's, and dropping the check frees everything Ajv kept for it (a
 * shared instance would keep every schema ever compiled).
 */
export function compileParameterCheck(schema: Readonly<Record<string, unknown>>): ParameterCheck {
  const draft = schema.$schema;
  if (draft !== undefined && draft !== INPUT_SCHEMA_DRAFT && draft !== `${INPUT_SCHEMA_DRAFT}#`) {
    throw new InputSchemaError(`its $schema is ${JSON.stringify(draft)}; the run API reads ${INPUT_SCHEMA_DRAFT} (what z.toJSONSchema() writes by default)`);
  }
  // Checked against the meta-schema by one shared instance (compiling the meta-schema is most of Ajv's cost).
  if (!metaChecker.validateSchema(schema)) {
    throw new InputSchemaError(`it is not a valid JSON Schema: ${metaChecker.errorsText(metaChecker.errors, { dataVar: "inputSchema" })}`);
  }
  const ajv = new Ajv2020({ ...AJV_OPTIONS, validateSchema: false, meta: false });
  let validate: ReturnType<typeof ajv.compile>;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    throw new InputSchemaError(`it is not a JSON Schema the run API can use: ${(err as Error).message}`, { cause: err });
  }
  return (parameters, at) => (validate(parameters) ? [] : issuesOf(validate.errors ?? [], at));
}

/** A JSON Pointer's segments, unescaped (RFC 6901). */
function pointerSegments(pointer: string): string[] {
  return pointer === "" ? [] : pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/**
 * Of a union's failed branches, keeps only the form the caller meant, so they
 * read what is wrong with it rather than every form's complaints. A branch is
 * a form that does not apply when the value is not of its type (`null` of a
 * nullable object) or misses its discriminator (zod's discriminatedUnion:
 * a `const` or `enum` on a field of the value). When exactly one branch is
 * left, only its errors are kept; when every branch missed its discriminator
 * on one field, that field is said to take one of their values. Otherwise the
 * union is left as Ajv reports it.
 */
function focusUnions(errors: readonly ErrorObject[]): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  const added: ErrorObject[] = [];
  const depth = (pointer: string): number => pointerSegments(pointer).length;
  for (const union of errors) {
    if (union.keyword !== "anyOf" && union.keyword !== "oneOf") continue;
    const prefix = `${union.schemaPath}/`;
    const byBranch = new Map<string, ErrorObject[]>();
    for (const e of errors) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      const branch = e.schemaPath.slice(prefix.length).split("/")[0]!;
      byBranch.set(branch, [...(byBranch.get(branch) ?? []), e]);
    }
    if (byBranch.size < 2) continue;
    const discriminatorMiss = (e: ErrorObject): boolean =>
      (e.keyword === "const" || e.keyword === "enum") && depth(e.instancePath) === depth(union.instancePath) + 1;
    const typeMiss = (e: ErrorObject): boolean => e.keyword === "type" && e.instancePath === union.instancePath;
    const applies = [...byBranch].filter(([, errs]) => !errs.some((e) => discriminatorMiss(e) || typeMiss(e)));
    const misses = [...byBranch.values()].map((errs) => errs.find(discriminatorMiss));
    if (applies.length === 1) {
      for (const [branch, errs] of byBranch) if (branch !== applies[0]![0]) for (const e of errs) dropped.add(e);
    } else if (applies.length === 0 && misses.every((m) => m !== undefined && m.instancePath === misses[0]!.instancePath)) {
      for (const errs of byBranch.values()) for (const e of errs) dropped.add(e);
      const allowedValues = misses.flatMap((m) => (m!.keyword === "const" ? [(m!.params as { allowedValue: unknown }).allowedValue] : (m!.params as { allowedValues: unknown[] }).allowedValues));
      added.push({ ...misses[0]!, keyword: "enum", params: { allowedValues } });
    } else {
      continue;
    }
    dropped.add(union);
  }
  return [...errors.filter((e) => !dropped.has(e)), ...added];
}

/** A JSON value as a message shows it. */
const shown = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** Ajv's errors as issues with dotted paths from the body's root; the field a `required` error is about is named, not its parent. */
function issuesOf(errors: readonly ErrorObject[], at: string): ParameterIssue[] {
  const out = new Map<string, ParameterIssue>();
  for (const e of focusUnions(errors)) {
    const segments = pointerSegments(e.instancePath);
    let message = e.message ?? "is invalid";
    const params = e.params as Record<string, unknown>;
    if (e.keyword === "required" || e.keyword === "dependentRequired") {
      segments.push(String(params.missingProperty));
      message = e.keyword === "required" ? "is required" : message;
    } else if (e.keyword === "additionalProperties" || e.keyword === "unevaluatedProperties") {
      segments.push(String(params.additionalProperty ?? params.unevaluatedProperty));
      message = "is not a field of the task's input";
    } else if (e.keyword === "pattern" && typeof (e.parentSchema as { format?: unknown } | undefined)?.format === "string") {
      // zod's email or uuid pattern is long and says little to a reader; its format says what is meant.
      message = `must be a valid ${(e.parentSchema as { format: string }).format}`;
    } else if (e.keyword === "type") {
      // zod writes `string | null` and unions of primitives as one list of types; Ajv joins them with commas.
      message = `must be ${String(params.type).split(",").join(" or ")}`;
    } else if (e.keyword === "enum" && Array.isArray(params.allowedValues)) {
      message = `must be one of ${params.allowedValues.map(shown).join(", ")}`;
    } else if (e.keyword === "const") {
      message = `must be ${shown(params.allowedValue)}`;
    }
    const path = [at, ...segments].join(".");
    out.set(`${path}\n${message}`, { path, message });
  }
  return [...out.values()];
}
