import type { FastifyRequest } from "fastify";

/** The resource every check is made on: `runs` of group `offload.dev`, which no object stores (RBAC needs none). */
export const RUNS_RESOURCE = { group: "offload.dev", resource: "runs" } as const;

/** What a caller may ask to do with runs, as RBAC verbs: delay (`create`), read (`get`), list, cancel (`delete`), retry (`update`). */
export type RunVerb = "create" | "get" | "list" | "delete" | "update";

/** A TokenReview or SubjectAccessReview could not be made: the caller is neither allowed nor refused. */
export class ReviewUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ReviewUnavailableError";
  }
}

/** Who made a request, once authenticated. */
export type Caller =
  /** A Kubernetes identity, as a TokenReview answered it. */
  | {
      readonly kind: "kubernetes";
      readonly username: string;
      readonly uid: string | undefined;
      readonly groups: readonly string[];
      readonly extra: Readonly<Record<string, readonly string[]>> | undefined;
      /** The ServiceAccount's namespace when the user is one (`system:serviceaccount:<ns>:<name>`). */
      readonly namespace: string | undefined;
    }
  /** Someone holding the shared `OFFLOAD_API_TOKEN`, or anyone at all with `OFFLOAD_AUTH=none`. */
  | { readonly kind: "shared" };

// The username the ServiceAccount authenticator gives (k8s.io/apiserver/pkg/authentication/serviceaccount/util.go: MakeUsername).
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** The namespace of a ServiceAccount username, or undefined for any other user. */
export function serviceAccountNamespace(username: string): string | undefined {
  return SERVICE_ACCOUNT_USER.exec(username)?.[1];
}

// Set by the authentication hook; a WeakMap rather than a request decoration, so nothing outlives the request.
const callers = new WeakMap<FastifyRequest, Caller>();

/** Records who made `request` (the authentication hook does, before any route runs). */
export function setCaller(request: FastifyRequest, caller: Caller): void {
  callers.set(request, caller);
}

/** Who made `request`; a request that passed no authentication hook (the probes) is nobody in particular. */
export function callerOf(request: FastifyRequest): Caller | undefined {
  return callers.get(request);
}
