/**
 * The fields of CustomResourceDefinition (apiextensions.k8s.io/v1), for
 * unknown-field detection: the real server decodes a CRD into its Go type,
 * so any other field is dropped with a warning, or refused under
 * fieldValidation=Strict.
 */
import { isObj, type Obj } from "../fields.js";
import { OBJECT_META_FIELDS } from "./prune.js";

/** A field's shape: `true` is anything; a record lists known fields; `{list}`/`{map}` wrap an element shape. */
type Shape = true | { fields: Record<string, Shape> } | { list: Shape } | { map: Shape };

const f = (fields: Record<string, Shape>): Shape => ({ fields });
const list = (s: Shape): Shape => ({ list: s });
const map = (s: Shape): Shape => ({ map: s });

const JSON_SCHEMA_FIELDS: Record<string, Shape> = {};
const schemaShape: Shape = { fields: JSON_SCHEMA_FIELDS };
Object.assign(JSON_SCHEMA_FIELDS, {
  id: true, $schema: true, $ref: true, description: true, type: true, format: true, title: true, default: true, maximum: true,
  exclusiveMaximum: true, minimum: true, exclusiveMinimum: true, maxLength: true, minLength: true, pattern: true, maxItems: true,
  minItems: true, uniqueItems: true, multipleOf: true, enum: true, maxProperties: true, minProperties: true, required: true,
  items: schemaShape, allOf: list(schemaShape), oneOf: list(schemaShape), anyOf: list(schemaShape), not: schemaShape,
  properties: map(schemaShape), additionalProperties: true, patternProperties: map(schemaShape), dependencies: true,
  additionalItems: true, definitions: map(schemaShape), externalDocs: f({ description: true, url: true }), example: true, nullable: true,
  "x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-embedded-resource": true, "x-kubernetes-int-or-string": true,
  "x-kubernetes-list-map-keys": true, "x-kubernetes-list-type": true, "x-kubernetes-map-type": true,
  "x-kubernetes-validations": list(f({ rule: true, message: true, messageExpression: true, reason: true, fieldPath: true, optionalOldSelf: true })),
} satisfies Record<string, Shape>);

const meta: Shape = f(Object.fromEntries([...OBJECT_META_FIELDS].map((k) => [k, true])));
const names = f({ plural: true, singular: true, shortNames: true, kind: true, listKind: true, categories: true });
const webhookClientConfig = f({ url: true, caBundle: true, service: f({ namespace: true, name: true, path: true, port: true }) });

const CRD: Shape = f({
  apiVersion: true,
  kind: true,
  metadata: meta,
  spec: f({
    group: true,
    names,
    scope: true,
    versions: list(
      f({
        name: true,
        served: true,
        storage: true,
        deprecated: true,
        deprecationWarning: true,
        schema: f({ openAPIV3Schema: schemaShape }),
        subresources: f({ status: f({}), scale: f({ specReplicasPath: true, statusReplicasPath: true, labelSelectorPath: true }) }),
        additionalPrinterColumns: list(f({ name: true, type: true, format: true, description: true, priority: true, jsonPath: true })),
        selectableFields: list(f({ jsonPath: true })),
      }),
    ),
    conversion: f({ strategy: true, webhook: f({ clientConfig: webhookClientConfig, conversionReviewVersions: true }) }),
    preserveUnknownFields: true,
  }),
  status: f({ conditions: true, acceptedNames: names, storedVersions: true }),
});

/** Removes the fields a v1 CRD does not have from `crd` (in place); returns their paths as the decoder names them. */
export function pruneCrd(crd: Obj): string[] {
  const unknown: string[] = [];
  walk(crd, CRD, "", unknown);
  return unknown;
}

function walk(v: unknown, shape: Shape, path: string, unknown: string[]): void {
  if (shape === true) return;
  if ("list" in shape) {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, shape.list, `${path}[${i}]`, unknown));
    return;
  }
  if (!isObj(v)) return;
  if ("map" in shape) {
    for (const [k, x] of Object.entries(v)) walk(x, shape.map, `${path}[${k}]`, unknown);
    return;
  }
  for (const k of Object.keys(v)) {
    const p = path ? `${path}.${k}` : k;
    const sub = shape.fields[k];
    if (sub === undefined) {
      unknown.push(p);
      delete v[k];
    } else walk(v[k], sub, p, unknown);
  }
}
