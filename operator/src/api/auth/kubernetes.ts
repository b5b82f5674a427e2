/**
 * Callers known by their Kubernetes identity: a bearer token checked with a
 * TokenReview (authentication.k8s.io/v1) for the API's audience, and each
 * call checked with a SubjectAccessReview (authorization.k8s.io/v1) on
 * `runs` of group `offload.dev` in a namespace. Both verdicts are kept for a
 * short time (see {@link VerdictCache}). The run API's own ServiceAccount
 * needs `create` on tokenreviews and subjectaccessreviews: the built-in
 * ClusterRole `system:auth-delegator` grants exactly that.
 */
import { createHash } from "node:crypto";
import { ApiException, AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { RUNS_RESOURCE, ReviewUnavailableError, serviceAccountNamespace, type Caller, type RunVerb } from "./caller.js";
import { VerdictCache } from "./verdict-cache.js";

/** A token the API server did not accept, and why, in words for the caller (never the token itself). */
export interface Rejection {
  readonly rejected: string;
}

export interface KubernetesAuthOptions {
  /** The audience tokens must be issued for. */
  audience: string;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  /** Longest wait for one review, in ms. @defaultValue 5000 */
  reviewTimeoutMs?: number;
  /** The clock cached verdicts age by (tests advance one by hand). @defaultValue `performance` */
  clock?: { now(): number };
}

type KubernetesCaller = Extract<Caller, { kind: "kubernetes" }>;
type TokenVerdict = KubernetesCaller | Rejection;

// A ServiceAccount token is a JWT: three base64url parts (header, claims, signature).
const JWT = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$/;

/** The `exp` of a JWT-shaped token in ms, or undefined; read without checking the signature (the TokenReview does that). */
function expiryOf(claims: string): number | undefined {
  try {
    const exp = (JSON.parse(Buffer.from(claims, "base64url").toString("utf8")) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class KubernetesAuth {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #opts: KubernetesAuthOptions & { reviewTimeoutMs: number };
  readonly #tokens: VerdictCache<TokenVerdict>;
  readonly #access: VerdictCache<{ allowed: boolean }>;
  readonly #log: Logger;

  constructor(kc: KubeConfig, opts: KubernetesAuthOptions, log: Logger) {
    this.#authn = kc.makeApiClient(AuthenticationV1Api);
    this.#authz = kc.makeApiClient(AuthorizationV1Api);
    this.#opts = { reviewTimeoutMs: 5000, ...opts };
    const cache = { ttlMs: opts.cacheTtlMs, maxEntries: opts.cacheMaxEntries, ...(opts.clock ? { clock: opts.clock } : {}) };
    this.#tokens = new VerdictCache<TokenVerdict>(cache);
    this.#access = new VerdictCache<{ allowed: boolean }>(cache);
    this.#log = log;
  }

  /**
   * Who holds `token`, or why it is refused. A token that is not a JWT, or
   * whose `exp` has passed, is refused without asking the API server.
   * Rejects with {@link ReviewUnavailableError} when the TokenReview fails.
   */
  async authenticate(token: string): Promise<TokenVerdict> {
    const m = JWT.exec(token);
    if (!m) return { rejected: "the bearer token is not a ServiceAccount token (a JWT)" };
    const exp = expiryOf(m[1]!);
    if (exp !== undefined && exp <= Date.now()) return { rejected: "the bearer token has expired" };
    // Kept under the token's hash: the cache never holds a usable token.
    const key = createHash("sha256").update(token).digest("base64url");
    return this.#tokens.get(key, async () => {
      const value = await this.#reviewToken(token);
      // An accepted token's verdict must not outlive the token.
      return { value, ttlMs: "rejected" in value || exp === undefined ? undefined : exp - Date.now() };
    });
  }

  /** Whether `caller` may do `verb` on runs in `namespace`. Rejects with {@link ReviewUnavailableError} when the review fails. */
  async allowed(caller: KubernetesCaller, verb: RunVerb, namespace: string): Promise<boolean> {
    const key = JSON.stringify([caller.username, caller.uid ?? "", [...caller.groups].sort(), namespace, verb]);
    const verdict = await this.#access.get(key, async () => ({ value: { allowed: await this.#reviewAccess(caller, verb, namespace) } }));
    return verdict.allowed;
  }

  async #reviewToken(token: string): Promise<TokenVerdict> {
    const { audience } = this.#opts;
    const review = await this.#call("TokenReview", () =>
      this.#authn.createTokenReview({
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [audience] } },
      }),
    );
    const status = review.status;
    if (!status?.authenticated || !status.user?.username) {
      // The API server's own words name the reason (expired, wrong audience, bad signature) without the token.
      const why = status?.error ? `: ${status.error}` : "";
      return { rejected: `the Kubernetes API server did not accept the bearer token for audience "${audience}"${why}` };
    }
    // An audience-aware authenticator answers the audiences it checked; one that is not must not vouch for ours
    // (authentication.k8s.io/v1 TokenReviewStatus.audiences).
    if (!status.audiences?.includes(audience)) {
      return { rejected: `the bearer token was not checked for audience "${audience}"; request a token with that audience` };
    }
    const { username, uid, groups, extra } = status.user;
    return { kind: "kubernetes", username, uid, groups: groups ?? [], extra, namespace: serviceAccountNamespace(username) };
  }

  async #reviewAccess(caller: KubernetesCaller, verb: RunVerb, namespace: string): Promise<boolean> {
    const review = await this.#call("SubjectAccessReview", () =>
      this.#authz.createSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: caller.username,
            ...(caller.uid ? { uid: caller.uid } : {}),
            groups: [...caller.groups],
            ...(caller.extra ? { extra: Object.fromEntries(Object.entries(caller.extra).map(([k, v]) => [k, [...v]])) } : {}),
            resourceAttributes: { ...RUNS_RESOURCE, verb, namespace },
          },
        },
      }),
    );
    const status = review.status;
    if (status?.evaluationError) this.#log.warn({ verb, namespace, user: caller.username, evaluationError: status.evaluationError }, "SubjectAccessReview had an evaluation error");
    return status?.allowed === true && status.denied !== true;
  }

  /** One review call, bounded in time; any failure becomes a {@link ReviewUnavailableError}. */
  async #call<T>(what: string, call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        call(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.#opts.reviewTimeoutMs} ms`)), this.#opts.reviewTimeoutMs);
        }),
      ]);
    } catch (err) {
      const forbidden = err instanceof ApiException && err.code === 403;
      this.#log.error(
        { err },
        forbidden
          ? `the run API may not create ${what}s: bind its ServiceAccount to the ClusterRole system:auth-delegator`
          : `${what} failed: the Kubernetes API server did not answer`,
      );
      throw new ReviewUnavailableError(`the caller's rights cannot be checked right now (${what} failed); try again shortly`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}
