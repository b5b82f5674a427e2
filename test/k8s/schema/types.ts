/**
 * The contract between the stand-in's HTTP layer (`../server.ts`) and its
 * schema engine (this folder): CRD validation, and admission of custom
 * objects (pruning, defaulting, OpenAPI and CEL validation), as
 * kube-apiserver v1.32 does them. The HTTP layer turns a Rejection into a
 * `Status` body and warnings into `Warning: 299 - "..."` headers.
 */
import type { Obj } from "../fields.js";

/** One entry of a Status's `details.causes`. */
export interface StatusCause {
  field: string;
  reason: string;
  message: string;
}

/** A request the real server refuses, as the Status it answers with. */
export interface Rejection {
  /** HTTP code: 422 (Invalid) or 400 (BadRequest, e.g. strict decoding). */
  status: number;
  reason: "Invalid" | "BadRequest" | string;
  message: string;
  causes: StatusCause[];
}

/** The `fieldValidation` query parameter (default Warn). */
export type FieldValidation = "Strict" | "Warn" | "Ignore";

export interface AdmitResult {
  /** The object as it would be stored: unknown fields pruned, defaults applied. */
  obj: Obj;
  /** Text of each Warning header (e.g. `unknown field "spec.colour"`). */
  warnings: string[];
  /** Set when the object is refused; `obj` is then meaningless. */
  rejection?: Rejection;
}

export interface CrdCheckResult {
  warnings: string[];
  rejection?: Rejection;
}

export interface CrdCheckOptions {
  fieldValidation: FieldValidation;
  /** The stored CRD on update; absent on create. */
  old?: Obj;
}

export interface AdmitOptions {
  /** The stored object on update/patch; absent on create. Transition rules (oldSelf) need it. */
  old?: Obj;
  fieldValidation: FieldValidation;
  /** Which endpoint the write came through. The caller has already merged the write into the object (e.g. a Scale's replicas into the spec path). */
  subresource?: "status" | "scale";
}
