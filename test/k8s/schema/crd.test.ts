import { describe, expect, it } from "vitest";
import type { Obj } from "../fields.js";
import { loadCorpus } from "./corpus.js";
import { validateCrd } from "./index.js";
import type { FieldValidation } from "./types.js";

const corpus = loadCorpus("crd-validation.json");
const causeSet = (causes: { field: string; reason: string }[] | undefined): string[] => (causes ?? []).map((c) => `${c.field} ${c.reason}`).sort();

describe("validateCrd answers each CRD of the corpus as kube-apiserver v1.32.6 did", () => {
  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const fieldValidation = (c.request.query?.fieldValidation ?? "Warn") as FieldValidation;
    const got = validateCrd(c.request.body as Obj, { fieldValidation });
    const want = c.response;
    if (want.status < 300) {
      expect(got.rejection, got.rejection?.message).toBeUndefined();
      expect(got.warnings).toEqual(want.warnings ?? []);
      return;
    }
    expect(got.rejection, "the real server refused it").toBeDefined();
    expect({ status: got.rejection!.status, reason: got.rejection!.reason, causes: causeSet(got.rejection!.causes) }).toEqual({
      status: want.status,
      reason: want.reason,
      causes: causeSet(want.causes),
    });
    // Messages are kube-apiserver's where the corpus shows them, except Go's dumps of structs.
    for (const cause of got.rejection!.causes) {
      const real = (want.causes ?? []).filter((w) => w.field === cause.field && w.reason === cause.reason).map((w) => w.message);
      if (!real.some((m) => m.includes("apiextensions."))) expect(real).toContain(cause.message);
    }
  });
});
