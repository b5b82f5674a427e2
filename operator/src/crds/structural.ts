/**
 * Turns the JSON Schema that zod emits (target OpenAPI 3.0) into the
 * *structural* form Kubernetes requires of a CRD's schema: a `type` on every
 * node (except free-form ones marked `x-kubernetes-preserve-unknown-fields`),
 * no `$ref`, no `additionalProperties: false`, no JavaScript-only bounds.
 * It also insists on a description for every field, so `kubectl explain` is
 * never empty.
 */
export type JsonSchemaNode = Record<string, unknown>;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const KEEP = new Set([
  "type", "description", "default", "enum", "format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
  "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "uniqueItems", "nullable", "required",
  "properties", "items", "additionalProperties",
  "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
]);

/** Converts `node` (and everything under it); `path` names it in error messages. */
export function toStructural(node: JsonSchemaNode, path = "spec", missing: string[] = []): JsonSchemaNode {
  if ("$ref" in node || "allOf" in node || "oneOf" in node || "anyOf" in node || "not" in node) {
    throw new Error(`${path}: not structural (${Object.keys(node).join(", ")}); mark it x-kubernetes-preserve-unknown-fields or simplify the zod schema`);
  }
  const out: JsonSchemaNode = {};
  for (const [k, v] of Object.entries(node)) if (KEEP.has(k)) out[k] = v;
  if (out["x-kubernetes-preserve-unknown-fields"] === true) {
    // Free-form: keep a type if zod gave an object, drop inner typing that would prune fields.
    const free: JsonSchemaNode = { "x-kubernetes-preserve-unknown-fields": true };
    if (node.type === "object") free.type = "object";
    if (typeof node.description === "string") free.description = node.description;
    if (node.properties && typeof node.properties === "object") {
      free.properties = mapProps(node.properties as Record<string, JsonSchemaNode>, path, missing);
      if (Array.isArray(node.required) && node.required.length) free.required = node.required;
    }
    if (node["x-kubernetes-validations"]) free["x-kubernetes-validations"] = node["x-kubernetes-validations"];
    return free;
  }
  if (out.maximum === MAX_SAFE) delete out.maximum;
  if (out.minimum === -MAX_SAFE) delete out.minimum;
  if (out.format === "date-time") delete out.pattern; // zod's ISO regex is not RE2-friendly and the format says it
  if (out.type === "object") {
    if (out.additionalProperties === false) delete out.additionalProperties;
    if (out.properties) {
      out.properties = mapProps(out.properties as Record<string, JsonSchemaNode>, path, missing);
      delete out.additionalProperties;
      if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
    } else if (out.additionalProperties && typeof out.additionalProperties === "object") {
      out.additionalProperties = toStructural(out.additionalProperties as JsonSchemaNode, `${path}[*]`, missing);
    }
  }
  if (out.type === "array" && out.items) out.items = toStructural(out.items as JsonSchemaNode, `${path}[]`, missing);
  if (!out.type) throw new Error(`${path}: no type (structural schemas need one)`);
  return out;
}

function mapProps(props: Record<string, JsonSchemaNode>, path: string, missing: string[]): Record<string, JsonSchemaNode> {
  const res: Record<string, JsonSchemaNode> = {};
  for (const [name, child] of Object.entries(props)) {
    const p = `${path}.${name}`;
    if (typeof child.description !== "string" || !child.description) missing.push(p);
    res[name] = toStructural(child, p, missing);
  }
  return res;
}
