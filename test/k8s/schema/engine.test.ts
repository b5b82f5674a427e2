import { describe, expect, it } from "vitest";
import { clone, type Obj } from "../fields.js";
import { loadJson } from "./corpus.js";
import { admitObject, validateCrd } from "./index.js";

/** Rules of kube-apiserver the corpus does not record, each shown on a variant of the corpus's Widget CRD. */
const widget = loadJson("widget-crd.json");
type Node = Record<string, unknown>;
const specSchema = (crd: Obj): Node => ((((((crd.spec as Node).versions as Node[])[0]!.schema as Node).openAPIV3Schema as Node).properties as Node).spec as Node);
const specProps = (crd: Obj): Record<string, Node> => specSchema(crd).properties as Record<string, Node>;
const causes = (r: { rejection?: { causes: { field: string; reason: string }[] } }): string[] => (r.rejection?.causes ?? []).map((c) => `${c.field} ${c.reason}`);
const object = (spec: Node, extra: Node = {}): Obj => ({ apiVersion: "corpus.example.com/v1", kind: "Widget", metadata: { name: "w" }, spec, ...extra });
const create = (crd: Obj, spec: Node): Obj => {
  const r = admitObject(crd, "v1", object(spec), { fieldValidation: "Strict" });
  expect(r.rejection, r.rejection?.message).toBeUndefined();
  return r.obj;
};

describe("custom objects", () => {
  it("an update ratchets: a value that was already invalid may stay, a change to it is checked", () => {
    const old = object({ size: "small", replicas: 11, minReplicas: 0, color: "blue" });
    const keep = admitObject(widget, "v1", { ...old, spec: { ...(old.spec as Node), size: "large" } }, { fieldValidation: "Warn", old });
    expect(keep.rejection).toBeUndefined();
    const change = admitObject(widget, "v1", { ...old, spec: { ...(old.spec as Node), replicas: 12 } }, { fieldValidation: "Warn", old });
    expect(causes(change)).toEqual(["spec.replicas FieldValueInvalid"]);
  });

  it("oldSelf inside a map list compares the item with the same key; a new item has nothing to compare", () => {
    const crd = clone(widget);
    (specProps(crd).ports!.items as Node)["x-kubernetes-validations"] = [{ rule: "self.port == oldSelf.port", message: "port is immutable" }];
    expect(validateCrd(crd, { fieldValidation: "Strict" }).rejection).toBeUndefined();
    const old = create(crd, { size: "small", ports: [{ name: "http", port: 80 }] });
    const moved = admitObject(crd, "v1", { ...old, spec: { ...(old.spec as Node), ports: [{ name: "grpc", port: 9000 }, { name: "http", port: 81 }] } }, { fieldValidation: "Warn", old });
    expect(causes(moved)).toEqual(["spec.ports[1] FieldValueInvalid"]);
    const added = admitObject(crd, "v1", { ...old, spec: { ...(old.spec as Node), ports: [{ name: "http", port: 80 }, { name: "grpc", port: 9000 }] } }, { fieldValidation: "Warn", old });
    expect(added.rejection).toBeUndefined();
  });

  it("rules see integers as CEL ints and int-or-string as either", () => {
    const crd = clone(widget);
    specSchema(crd)["x-kubernetes-validations"] = [
      { rule: "self.replicas * 2 <= 10", message: "at most 5 replicas" },
      { rule: "!has(self.target) || type(self.target) == int || self.target.startsWith('p')", message: "a named target starts with p" },
    ];
    expect(validateCrd(crd, { fieldValidation: "Strict" }).rejection).toBeUndefined();
    expect(causes(admitObject(crd, "v1", object({ size: "small", replicas: 6 }), { fieldValidation: "Warn" }))).toEqual(["spec FieldValueInvalid"]);
    expect(admitObject(crd, "v1", object({ size: "small", replicas: 5, target: 8080 }), { fieldValidation: "Warn" }).rejection).toBeUndefined();
    expect(admitObject(crd, "v1", object({ size: "small", target: "port" }), { fieldValidation: "Warn" }).rejection).toBeUndefined();
    expect(causes(admitObject(crd, "v1", object({ size: "small", target: "http" }), { fieldValidation: "Warn" }))).toEqual(["spec FieldValueInvalid"]);
  });

  it("rules may use Kubernetes' list functions", () => {
    const crd = clone(widget);
    specProps(crd).tags!["x-kubernetes-validations"] = [{ rule: "self.isSorted() && self.indexOf('x') == -1", message: "sorted, without x" }];
    expect(validateCrd(crd, { fieldValidation: "Strict" }).rejection).toBeUndefined();
    expect(admitObject(crd, "v1", object({ size: "small", tags: ["a", "b"] }), { fieldValidation: "Warn" }).rejection).toBeUndefined();
    expect(causes(admitObject(crd, "v1", object({ size: "small", tags: ["b", "a"] }), { fieldValidation: "Warn" }))).toEqual(["spec.tags FieldValueInvalid"]);
    expect(causes(admitObject(crd, "v1", object({ size: "small", tags: ["a", "x"] }), { fieldValidation: "Warn" }))).toEqual(["spec.tags FieldValueInvalid"]);
  });

  it("fieldValidation=Ignore prunes unknown fields without a warning; inside an embedded resource its apiVersion, kind and metadata stay", () => {
    const r = admitObject(widget, "v1", object({ size: "small", colour: "red", template: { apiVersion: "v1", kind: "Pod", metadata: { name: "p", bogus: 1 }, spec: { any: "thing" } } }), { fieldValidation: "Ignore" });
    expect(r.rejection).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.obj.spec).toMatchObject({ template: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { any: "thing" } } });
    expect((r.obj.spec as Node).colour).toBeUndefined();
    expect(admitObject(widget, "v1", object({ size: "small", template: { apiVersion: "v1", kind: "Pod", metadata: { bogus: 1 } } }), { fieldValidation: "Warn" }).warnings).toEqual([
      'unknown field "spec.template.metadata.bogus"',
    ]);
  });

  it("an embedded resource needs its apiVersion and kind", () => {
    const r = admitObject(widget, "v1", object({ size: "small", template: { metadata: { name: "p" } } }), { fieldValidation: "Warn" });
    expect(causes(r)).toEqual(["spec.template.apiVersion FieldValueRequired", "spec.template.kind FieldValueRequired", "<nil> FieldValueInvalid"]);
  });

  it("a write through /status is checked against the status schema only", () => {
    const old = create(widget, { size: "small" });
    const ok = admitObject(widget, "v1", { ...old, status: { phase: "Ready", replicas: 1 } }, { fieldValidation: "Warn", old, subresource: "status" });
    expect(ok.rejection).toBeUndefined();
    const bad = admitObject(widget, "v1", { ...old, status: { phase: "Gone", replicas: -1 } }, { fieldValidation: "Warn", old, subresource: "status" });
    expect(causes(bad).sort()).toEqual([".status.replicas FieldValueInvalid", "<nil> FieldValueInvalid", "status.phase FieldValueNotSupported", "status.replicas FieldValueInvalid"]);
  });

  it("a date-time must be an RFC 3339 time on a real day", () => {
    for (const ok of ["2024-02-29T10:00:00Z", "2024-03-01t23:59:59.123+02:00"]) expect(admitObject(widget, "v1", object({ size: "small", releasedAt: ok }), { fieldValidation: "Warn" }).rejection).toBeUndefined();
    for (const bad of ["2023-02-29T10:00:00Z", "2024-03-01 10:00:00Z", "2024-03-01T10:00:00", "yesterday"]) {
      expect(causes(admitObject(widget, "v1", object({ size: "small", releasedAt: bad }), { fieldValidation: "Warn" }))).toEqual(["spec.releasedAt FieldValueInvalid"]);
    }
  });

  it("a messageExpression that fails to evaluate falls back to message", () => {
    const crd = clone(widget);
    specSchema(crd)["x-kubernetes-validations"] = [{ rule: "self.size != 'large'", message: "no large widgets", messageExpression: "'tags: ' + self.tags[0]" }];
    const r = admitObject(crd, "v1", object({ size: "large" }), { fieldValidation: "Warn" });
    expect(r.rejection?.causes).toEqual([{ field: "spec", reason: "FieldValueInvalid", message: 'Invalid value: "object": no large widgets' }]);
  });
});

describe("CRDs", () => {
  it("the cost of a rule follows the bounds the schema sets: nested all() over 3 tags fits, over an unbounded list it does not", () => {
    const crd = clone(widget);
    specProps(crd).tags!["x-kubernetes-validations"] = [{ rule: "self.all(x, self.all(y, x + y != ''))" }];
    expect(validateCrd(crd, { fieldValidation: "Strict" }).rejection).toBeUndefined();
    delete specProps(crd).tags!.maxItems;
    expect(causes(validateCrd(crd, { fieldValidation: "Strict" }))).toContain("spec.validation.openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[0].rule FieldValueForbidden");
  });

  it("a rule must evaluate to a bool and name fields the schema has", () => {
    const crd = clone(widget);
    specSchema(crd)["x-kubernetes-validations"] = [{ rule: "self.size" }, { rule: "self.shape == 'round'" }];
    const r = validateCrd(crd, { fieldValidation: "Strict" });
    expect(causes(r)).toEqual([
      "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule FieldValueInvalid",
      "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[1].rule FieldValueInvalid",
    ]);
    expect(r.rejection!.causes[0]!.message).toContain("cel expression must evaluate to a bool");
  });

  it("per-version differences keep errors under spec.versions[i]", () => {
    const crd = clone(widget);
    const versions = (crd.spec as Node).versions as Node[];
    const v2 = clone(versions[0]!);
    v2.name = "v2";
    v2.storage = false;
    v2.additionalPrinterColumns = [{ name: "Size", type: "float", jsonPath: ".spec.size" }];
    versions.push(v2);
    expect(causes(validateCrd(crd, { fieldValidation: "Strict" }))).toEqual(["spec.versions[1].additionalPrinterColumns[0].type FieldValueInvalid"]);
  });

  it("an update may not change the group or the plural", () => {
    const next = clone(widget);
    (next.spec as Node).group = "other.example.com";
    (next.metadata as Node).name = "widgets.other.example.com";
    expect(causes(validateCrd(next, { fieldValidation: "Strict", old: widget }))).toEqual(["spec.group FieldValueInvalid"]);
  });
});
