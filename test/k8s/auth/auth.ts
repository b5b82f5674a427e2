/**
 * The stand-in's authentication and authorization, wired to its store: it
 * issues and reviews ServiceAccount tokens, evaluates RBAC, keeps aggregated
 * ClusterRoles filled, and answers the HTTP endpoints of all of it.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Obj } from "../fields.js";
import type { AccessDecision, AccessRequest, IssueTokenOptions, TokenReviewResult } from "./types.js";

/** What the auth part needs of the stand-in's store (FakeKube's in-process methods, the same code paths as HTTP). */
export interface AuthStore {
  get(plural: string, namespace: string, name: string): Obj | undefined;
  list(plural: string, namespace?: string): Obj[];
  create(obj: Obj, manager?: string): Obj;
  patch(plural: string, namespace: string, name: string, patch: Obj, manager?: string): Obj;
}

/** An answer to an HTTP request the auth part serves. */
export interface AuthAnswer {
  status: number;
  body: unknown;
}

export class KubeAuth {
  /** The `iss` of the tokens it issues, as kind's and kubeadm's default `--service-account-issuer`. */
  readonly issuer = "https://kubernetes.default.svc.cluster.local";

  constructor(readonly store: AuthStore) {}

  /** The API server's own audiences: what a token is for when its TokenRequest names none, and what a TokenReview checks by default. */
  get apiAudiences(): string[] {
    return [this.issuer];
  }

  /** Signs a token for ServiceAccount `namespace/name` (which must exist), as a TokenRequest would. */
  issueToken(namespace: string, name: string, opts: IssueTokenOptions = {}): string {
    void namespace;
    void name;
    void opts;
    throw new Error("not implemented yet");
  }

  /** What a TokenReview of `token` for `audiences` (default the API server's) answers in `status`. */
  reviewToken(token: string, audiences?: string[]): TokenReviewResult {
    void token;
    void audiences;
    throw new Error("not implemented yet");
  }

  /** What a SubjectAccessReview with this spec answers in `status` (RBAC, plus `system:masters` allowed everything). */
  authorize(request: AccessRequest): AccessDecision {
    void request;
    throw new Error("not implemented yet");
  }

  /** Creates the built-in ClusterRoles and ClusterRoleBindings a cluster starts with (`cluster-admin`, `admin`, `edit`, `view`, `system:auth-delegator`, ...). */
  bootstrap(): void {}

  /** Called by the store after any write of a ClusterRole: aggregated roles are refilled (before the next review, at the latest). */
  clusterRolesChanged(): void {}

  /** Serves the request if it is one of the auth endpoints (TokenRequest, the reviews); undefined otherwise. */
  handle(method: string, pathname: string, headers: IncomingHttpHeaders, body: string): AuthAnswer | undefined {
    void method;
    void pathname;
    void headers;
    void body;
    return undefined;
  }
}
