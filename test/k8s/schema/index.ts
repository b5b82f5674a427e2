/**
 * The stand-in's schema engine: what kube-apiserver v1.32 checks when a
 * CustomResourceDefinition is written, and what it does to a custom object
 * on its way in (pruning, defaulting, OpenAPI and CEL validation).
 */
import type { Obj } from "../fields.js";
import { admitObject as admit } from "./admit.js";
import { validateCrd as checkCrd } from "./crd.js";
import type { AdmitOptions, AdmitResult, CrdCheckOptions, CrdCheckResult } from "./types.js";

export type { AdmitOptions, AdmitResult, CrdCheckOptions, CrdCheckResult, FieldValidation, Rejection, StatusCause } from "./types.js";

/** Checks a CustomResourceDefinition (apiextensions.k8s.io/v1) as kube-apiserver does on create (old absent) or update. */
export function validateCrd(crd: Obj, opts: CrdCheckOptions): CrdCheckResult {
  return checkCrd(crd, opts);
}

/** Admits a custom object of `crd` at `version`: strict/warn unknown-field handling, pruning, defaulting, OpenAPI value validation, CEL (x-kubernetes-validations, incl. transition rules with oldSelf), list-type map keys, the scale-subresource replica-path checks. */
export function admitObject(crd: Obj, version: string, obj: Obj, opts: AdmitOptions): AdmitResult {
  return admit(crd, version, obj, opts);
}
