import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AuthMode } from "../../config/api.js";
import { DEFAULT_NAMESPACE } from "../../store/rows.js";
import { ApiHttpError, errorBody } from "../errors.js";
import { isDashboardPath } from "../ui.js";
import { RUNS_RESOURCE, ReviewUnavailableError, callerOf, setCaller, type RunVerb } from "./caller.js";
import type { KubernetesAuth } from "./kubernetes.js";

/**
 * Paths answered without a token: Kubernetes probes carry none, and a
 * Prometheus scrape usually carries none either (metrics hold counts and task
 * names, never parameters or results).
 */
export const OPEN_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Whether `request` is to a path open to anyone: those above, and the
 * dashboard's files (/ui/…), which hold no data: the page asks for the token
 * and sends it with each of its API calls.
 */
export const isOpenPath = (request: FastifyRequest): boolean => OPEN_PATHS.has(request.url.split("?")[0]!) || isDashboardPath(request.url);

// Hashing first makes the comparison constant-time whatever the lengths.
const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * What the run routes ask of authorization: which namespace a request is
 * about, and whether its caller may do a verb on runs there. One object per
 * API, for every mode: with `token` and `none` every authenticated caller may
 * do everything and runs live in `default` unless a request names another.
 */
export class Access {
  readonly mode: AuthMode;
  readonly #kube: KubernetesAuth | undefined;

  constructor(mode: "token" | "none");
  constructor(mode: "kubernetes", kube: KubernetesAuth);
  constructor(mode: AuthMode, kube?: KubernetesAuth) {
    this.mode = mode;
    this.#kube = kube;
  }

  /**
   * The namespace a request delays runs in: the one it names, else (with
   * Kubernetes auth) the caller's own ServiceAccount namespace, else `default`.
   */
  namespaceFor(request: FastifyRequest, named: string | undefined): string {
    return named ?? this.#callerNamespace(request) ?? DEFAULT_NAMESPACE;
  }

  /**
   * The namespace a listing is of: the one it names, else (with Kubernetes
   * auth) the caller's own; with `token` or `none` and no name, undefined:
   * every namespace. (Not `namespaceFor` with an undefined fallback: a
   * default parameter turns an explicit undefined back into `default`.)
   */
  listingNamespace(request: FastifyRequest, named: string | undefined): string | undefined {
    return named ?? this.#callerNamespace(request);
  }

  /** The caller's ServiceAccount namespace with Kubernetes auth; undefined without it; 400 for a caller that is not a ServiceAccount. */
  #callerNamespace(request: FastifyRequest): string | undefined {
    const caller = callerOf(request);
    if (caller?.kind !== "kubernetes") return undefined;
    if (caller.namespace) return caller.namespace;
    throw new ApiHttpError(
      "OFFLOAD_VALIDATION",
      `the caller (${caller.username}) is not a ServiceAccount, so it has no namespace of its own; name one with \`namespace\``,
      { issues: [{ path: "namespace", message: "required for a caller that is not a ServiceAccount" }] },
    );
  }

  /**
   * Throws 403 `OFFLOAD_FORBIDDEN` unless the caller may do `verb` on runs in
   * `namespace`, and 503 `OFFLOAD_UNAVAILABLE` when that cannot be known now.
   */
  async require(request: FastifyRequest, verb: RunVerb, namespace: string): Promise<void> {
    if (!this.#kube) return;
    const caller = callerOf(request);
    // Fails closed: a request that reached a run route without a reviewed identity is nobody's.
    if (caller?.kind !== "kubernetes") throw new ApiHttpError("OFFLOAD_UNAUTHORIZED", "no authenticated caller; send `Authorization: Bearer <token>`");
    let allowed: boolean;
    try {
      allowed = await this.#kube.allowed(caller, verb, namespace);
    } catch (err) {
      if (err instanceof ReviewUnavailableError) throw new ApiHttpError("OFFLOAD_UNAVAILABLE", err.message);
      throw err;
    }
    if (!allowed) {
      throw new ApiHttpError(
        "OFFLOAD_FORBIDDEN",
        `${caller.username} may not ${verb} ${RUNS_RESOURCE.resource}.${RUNS_RESOURCE.group} in namespace ${namespace}; ` +
          `grant it with a RoleBinding there (e.g. to the ClusterRole offload-runs-${verb === "get" || verb === "list" ? "viewer" : "creator"})`,
      );
    }
  }

  /**
   * Authenticates every request but those to {@link OPEN_PATHS}: 401
   * `OFFLOAD_UNAUTHORIZED` without a valid bearer token (never echoing it),
   * 503 when the token cannot be checked now. `token` is the shared token of
   * the `token` mode.
   */
  install(app: FastifyInstance, token?: string): void {
    // Nobody to check: no hook at all, so `none` (npm run dev, the bench) pays nothing per request.
    if (this.mode === "none") return;
    const expected = token === undefined ? undefined : digest(token);
    const kube = this.#kube;
    app.addHook("onRequest", async (request, reply) => {
      if (isOpenPath(request)) return;
      const header = request.headers.authorization;
      const m = BEARER.exec(header ?? "");
      if (!m) {
        return unauthorized(reply, header ? "the Authorization header is malformed; send `Authorization: Bearer <token>`" : "missing `Authorization: Bearer <token>` header");
      }
      if (kube) {
        let verdict;
        try {
          verdict = await kube.authenticate(m[1]!);
        } catch (err) {
          if (!(err instanceof ReviewUnavailableError)) throw err;
          return reply.code(503).header("retry-after", "1").send(errorBody("OFFLOAD_UNAVAILABLE", err.message));
        }
        if ("rejected" in verdict) return unauthorized(reply, `${verdict.rejected}; mount a fresh ServiceAccount token (OFFLOAD_TOKEN_FILE)`);
        setCaller(request, verdict);
        return;
      }
      if (expected && timingSafeEqual(digest(m[1]!), expected)) {
        setCaller(request, { kind: "shared" });
        return;
      }
      return unauthorized(reply, "the bearer token is wrong; send the run API's OFFLOAD_API_TOKEN");
    });
  }
}

function unauthorized(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(401).header("www-authenticate", 'Bearer realm="offload"').send(errorBody("OFFLOAD_UNAUTHORIZED", message));
}
