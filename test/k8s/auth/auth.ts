/**
 * The stand-in's authentication and authorization, wired to its store: it
 * issues and reviews ServiceAccount tokens, evaluates RBAC, keeps aggregated
 * ClusterRoles filled, and answers the HTTP endpoints of all of it
 * (`reviews.ts`).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Obj } from "../fields.js";
import { meta } from "../metadata.js";
import { bootstrapPolicy } from "./bootstrap.js";
import { aggregate, authorize, rulesFor, type PolicyRule, type RbacObjects } from "./rbac.js";
import { routeAuth } from "./reviews.js";
import { DEFAULT_EXPIRATION_SECONDS, TokenSigner } from "./tokens.js";
import type { AccessDecision, AccessRequest, IssueTokenOptions, TokenReviewResult, UserInfo } from "./types.js";

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

/**
 * Who the stand-in's own clients are (its kubeconfig's token is no real
 * credential): a cluster admin in `system:masters`, as the admin kubeconfig of
 * a kind cluster is. A SelfSubjectAccessReview sent with a token this
 * stand-in issued is that ServiceAccount's instead.
 */
export const ADMIN_USER: UserInfo = { username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] };

export class KubeAuth {
  /** The `iss` of the tokens it issues, as kind's and kubeadm's default `--service-account-issuer`. */
  readonly issuer = "https://kubernetes.default.svc.cluster.local";
  readonly #signer = new TokenSigner(this.issuer);
  #aggregationPending = false;

  constructor(readonly store: AuthStore) {}

  /** The API server's own audiences (`--api-audiences`, the issuer by default): what a token is for when its TokenRequest names none, and what a TokenReview checks by default. */
  get apiAudiences(): string[] {
    return [this.issuer];
  }

  /** The public key tokens are signed with, in PEM (`--service-account-key-file`), for a test that checks a signature itself. */
  get publicKeyPem(): string {
    return this.#signer.publicKeyPem;
  }

  /** Signs a token for ServiceAccount `namespace/name`, which must exist (its uid goes into the token); see {@link IssueTokenOptions}. */
  issueToken(namespace: string, name: string, opts: IssueTokenOptions = {}): string {
    return this.issue(namespace, name, opts).token;
  }

  /** {@link issueToken} with the expiry, as a TokenRequest's status has both. */
  issue(namespace: string, name: string, opts: IssueTokenOptions = {}): { token: string; expiresAt: Date } {
    const sa = this.store.get("serviceaccounts", namespace, name);
    if (!sa) throw new Error(`serviceaccounts "${name}" not found in namespace "${namespace}": create the ServiceAccount first`);
    const seconds = opts.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
    if (!(seconds > 0)) throw new Error(`expirationSeconds must be positive, got ${seconds}`);
    const audiences = opts.audiences?.length ? opts.audiences : this.apiAudiences;
    return this.#signer.issue({ namespace, name, uid: String(meta(sa).uid) }, audiences, seconds, opts.issuedAt ?? new Date());
  }

  /**
   * What a TokenReview of `token` for `audiences` (default the API server's)
   * answers in `status`. Errors are worded as the real server's: its
   * authenticator chain wraps a service-account token's error as
   * `[invalid bearer token, <error>]`, and a token no authenticator
   * recognizes (malformed, another issuer) gets `invalid bearer token` alone.
   */
  reviewToken(token: string, audiences?: string[]): TokenReviewResult {
    const wanted = audiences?.length ? audiences : this.apiAudiences;
    const fail = (error: string): TokenReviewResult => ({ authenticated: false, error });
    const checked = this.#signer.verify(token, wanted, new Date());
    if (!checked.ok) return fail(checked.failure.kind === "unrecognized" ? "invalid bearer token" : `[invalid bearer token, ${checked.failure.message}]`);
    const t = checked.token;
    // claims.go validator.Validate: the ServiceAccount must still exist with the uid in the token.
    const sa = this.store.get("serviceaccounts", t.namespace, t.name);
    if (!sa) return fail(`[invalid bearer token, serviceaccounts ${JSON.stringify(t.name)} not found]`);
    const uid = String(meta(sa).uid);
    if (uid !== t.uid) return fail(`[invalid bearer token, service account UID (${uid}) does not match claim (${t.uid})]`);
    if (meta(sa).deletionTimestamp !== undefined) return fail(`[invalid bearer token, service account ${t.namespace}/${t.name} has been deleted]`);
    return {
      authenticated: true,
      // serviceaccount.ServiceAccountInfo.UserInfo, then the authenticator's group adder appends system:authenticated.
      user: {
        username: `system:serviceaccount:${t.namespace}:${t.name}`,
        uid: t.uid,
        groups: ["system:serviceaccounts", `system:serviceaccounts:${t.namespace}`, "system:authenticated"],
        ...(t.jti ? { extra: { "authentication.kubernetes.io/credential-id": [`JTI=${t.jti}`] } } : {}),
      },
      audiences: t.audiences,
    };
  }

  /**
   * What a SubjectAccessReview with this spec answers in `status`: the
   * authorizer chain of a kubeadm cluster, i.e. `system:masters` is allowed
   * everything (with no reason), then RBAC.
   */
  authorize(request: AccessRequest): AccessDecision {
    if ((request.groups ?? []).includes("system:masters")) return { allowed: true };
    this.flushAggregation();
    return authorize(this.#rbacObjects(), {
      user: { username: request.user ?? "", groups: request.groups ?? [] },
      ...(request.resourceAttributes ? { resource: request.resourceAttributes } : {}),
      ...(request.nonResourceAttributes ? { nonResource: request.nonResourceAttributes } : {}),
    });
  }

  /** What a SelfSubjectRulesReview lists for `user` in `namespace`: rbac.go `RulesFor`, split into resource and non-resource rules. */
  rulesFor(user: UserInfo, namespace: string): { rules: PolicyRule[]; error?: string } {
    this.flushAggregation();
    return rulesFor(this.#rbacObjects(), { username: user.username, groups: user.groups }, namespace);
  }

  #rbacObjects(): RbacObjects {
    return {
      clusterRoleBindings: () => this.store.list("clusterrolebindings"),
      roleBindings: (ns) => this.store.list("rolebindings", ns),
      clusterRole: (name) => this.store.get("clusterroles", "", name),
      role: (ns, name) => this.store.get("roles", ns, name),
    };
  }

  /** Creates the built-in ClusterRoles and ClusterRoleBindings a cluster starts with (`bootstrap.ts`), and fills the aggregated ones. */
  bootstrap(): void {
    for (const o of bootstrapPolicy()) this.store.create(o, "kube-apiserver");
    this.flushAggregation();
  }

  /** Called by the store after any write of a ClusterRole: aggregated roles are refilled soon, and before the next review at the latest. */
  clusterRolesChanged(): void {
    if (this.#aggregationPending) return;
    this.#aggregationPending = true;
    // Not from inside the store's write (this is called while it emits): as the real controller, a moment later.
    setImmediate(() => this.flushAggregation());
  }

  /** The ClusterRole aggregation controller's work, done now: aggregated roles get the rules of the roles their selectors match. */
  flushAggregation(): void {
    this.#aggregationPending = false;
    for (const [name, rules] of aggregate(this.store.list("clusterroles"))) {
      // A role deleted since it was listed has nothing to fill.
      if (this.store.get("clusterroles", "", name)) this.store.patch("clusterroles", "", name, { rules }, "clusterrole-aggregation-controller");
    }
    // The patches above asked for another round; there is nothing left for it.
    this.#aggregationPending = false;
  }

  /** Who sent a request: the ServiceAccount of a token this stand-in issued, else the admin; then impersonation headers, as kubectl --as sends them. */
  requestUser(headers: IncomingHttpHeaders): UserInfo {
    const auth = headers.authorization ?? "";
    const bearer = /^Bearer\s+(.+)$/i.exec(auth)?.[1];
    const reviewed = bearer ? this.reviewToken(bearer) : undefined;
    const caller = reviewed?.authenticated && reviewed.user ? reviewed.user : ADMIN_USER;
    return impersonated(caller, headers);
  }

  /** Serves the request if it is one of the auth endpoints (TokenRequest, the reviews); undefined otherwise. */
  handle(method: string, pathname: string, headers: IncomingHttpHeaders, body: Buffer): AuthAnswer | undefined {
    return routeAuth(this, method, pathname, headers, body);
  }
}

/**
 * The impersonation filter (`staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`):
 * `Impersonate-User` replaces the user; a ServiceAccount's username brings its
 * groups when no `Impersonate-Group` is given; `system:authenticated` is added
 * unless the groups already say authenticated or unauthenticated
 * (`system:unauthenticated` for `system:anonymous`). The
 * stand-in's admin may impersonate anyone (no impersonate check).
 */
function impersonated(caller: UserInfo, headers: IncomingHttpHeaders): UserInfo {
  const user = headers["impersonate-user"];
  const name = Array.isArray(user) ? user[0] : user;
  if (!name) return caller;
  const raw = headers["impersonate-group"];
  const groups = raw === undefined ? [] : Array.isArray(raw) ? raw.flatMap((g) => g.split(",").map((x) => x.trim())) : raw.split(",").map((x) => x.trim());
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
  if (sa && groups.length === 0) groups.push("system:serviceaccounts", `system:serviceaccounts:${sa[1]!}`);
  if (name === "system:anonymous") {
    if (!groups.includes("system:unauthenticated")) groups.push("system:unauthenticated");
  } else if (!groups.includes("system:authenticated") && !groups.includes("system:unauthenticated")) groups.push("system:authenticated");
  const uid = headers["impersonate-uid"];
  return { username: name, groups, ...(typeof uid === "string" && uid ? { uid } : {}) };
}
