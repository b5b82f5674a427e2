import { describe, expect, it } from "vitest";
import { clone, isObj, mergePatch, type Obj } from "../fields.js";
import { loadCorpus, loadJson, type CorpusRequest } from "./corpus.js";
import { admitObject, validateCrd } from "./index.js";
import type { AdmitOptions, AdmitResult, FieldValidation } from "./types.js";

/**
 * The validation side of object-validation.json, replayed on the engine
 * alone: this test plays the HTTP layer's part (which write keeps which
 * part of the stored object) in a few lines so that what the engine decides
 * can be compared with the real server's answer.
 */
const corpus = loadCorpus("object-validation.json");
const crd = loadJson("widget-crd.json");
const VERSION = "v1";
const causeSet = (causes: { field: string; reason: string }[] | undefined): string[] => (causes ?? []).map((c) => `${c.field} ${c.reason}`).sort();

/** A tiny store: the objects the setup steps created, by name. */
function play(store: Map<string, Obj>, req: CorpusRequest): AdmitResult | undefined {
  const parts = req.path.split("/");
  const fieldValidation = (req.query?.fieldValidation ?? "Warn") as FieldValidation;
  const sub = parts.at(-1) === "status" || parts.at(-1) === "scale" ? (parts.at(-1) as "status" | "scale") : undefined;
  const name = sub ? parts.at(-2)! : parts.at(-1)!;
  const admit = (obj: Obj, opts: Omit<AdmitOptions, "fieldValidation">): AdmitResult => {
    const r = admitObject(crd, VERSION, obj, { fieldValidation, ...opts });
    if (!r.rejection) store.set(String((r.obj.metadata as Obj).name), r.obj);
    return r;
  };
  if (req.method === "POST") {
    const body = clone(req.body as Obj);
    delete body.status; // the status subresource: a create cannot set status
    return admit(body, {});
  }
  const old = store.get(name);
  if (!old) throw new Error(`no stored ${name}`);
  if (sub === "scale") {
    if (req.method !== "PUT") return undefined;
    const next = clone(old);
    (next.spec as Obj).replicas = ((req.body as Obj).spec as Obj).replicas;
    return admit(next, { old, subresource: "scale" });
  }
  let next = req.method === "PUT" ? clone(req.body as Obj) : (mergePatch(old, req.body) as Obj);
  if (sub === "status") next = { ...next, spec: clone(old.spec) };
  else if (isObj(old.status)) next.status = clone(old.status);
  else delete next.status;
  return admit(next, { old, ...(sub ? { subresource: sub } : {}) });
}

describe("admitObject answers each Widget write of the corpus as kube-apiserver v1.32.6 did", () => {
  it("the Widget CRD itself is valid", () => {
    expect(validateCrd(crd, { fieldValidation: "Strict" })).toEqual({ warnings: [] });
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const store = new Map<string, Obj>();
    for (const s of c.setup ?? []) expect(play(store, s)?.rejection).toBeUndefined();
    const got = play(store, c.request);
    if (!got) return; // a read (GET /scale): nothing for the engine to decide
    const want = c.response;
    if (want.status >= 300) {
      expect(got.rejection, "the real server refused it").toBeDefined();
      expect({ status: got.rejection!.status, reason: got.rejection!.reason, causes: causeSet(got.rejection!.causes) }).toEqual({
        status: want.status,
        reason: want.reason,
        causes: causeSet(want.causes),
      });
      if (want.status === 400) expect(got.rejection!.message).toBe(want.message);
      for (const cause of got.rejection!.causes) {
        const real = (want.causes ?? []).filter((w) => w.field === cause.field && w.reason === cause.reason).map((w) => w.message);
        expect(real).toContain(cause.message);
      }
      return;
    }
    expect(got.rejection, got.rejection?.message).toBeUndefined();
    expect(got.warnings).toEqual(want.warnings ?? []);
    if (want.body && want.body.kind !== "Scale") {
      expect(got.obj.spec).toEqual(want.body.spec);
      if (c.request.method !== "POST") expect(got.obj.status).toEqual(want.body.status);
    }
  });
});
