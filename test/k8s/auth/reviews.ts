/**
 * The HTTP side: TokenRequest (`POST .../serviceaccounts/NAME/token`,
 * `pkg/registry/core/serviceaccount/storage/token.go`), TokenReview
 * (`pkg/registry/authentication/tokenreview/storage.go`), SelfSubjectReview, and the access
 * reviews (`pkg/registry/authorization/{subjectaccessreview,
 * selfsubjectaccessreview,localsubjectaccessreview,selfsubjectrulesreview}/rest.go` with
 * `pkg/apis/authorization/validation`). None is stored: each answer is the
 * request with its status filled in.
 */
import type { IncomingHttpHeaders } from "node:http";
import { isObj, type Obj } from "../fields.js";
import { HttpError, decodeObject, invalid, notFoundPath } from "../http.js";
import type { StatusCause } from "../schema/index.js";
import type { AuthAnswer, KubeAuth } from "./auth.js";
import { PROTOBUF, decodeProtobuf } from "./protobuf.js";
import { DEFAULT_EXPIRATION_SECONDS } from "./tokens.js";
import type { AccessRequest, NonResourceAttributes, ResourceAttributes } from "./types.js";

const AUTHN = "authentication.k8s.io";
const AUTHZ = "authorization.k8s.io";
/** An unstored object's metadata as the real server writes it (a zero creationTimestamp marshals as null). */
const EMPTY_META = { creationTimestamp: null };
const MAX_EXPIRATION_SECONDS = 2 ** 32;

const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

function methodNotAllowed(): HttpError {
  return new HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
}

/** Go's `field.Invalid` text for a value: strings quoted, nil as "null", numbers and booleans bare. */
function invalidValue(v: unknown): string {
  if (v === undefined || v === null) return `"null"`;
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

const cause = (field: string, value: unknown, detail: string): StatusCause => ({ field, reason: "FieldValueInvalid", message: `Invalid value: ${invalidValue(value)}: ${detail}` });

/** Serves `pathname` if it is an auth endpoint; undefined lets the generic routes have it. */
export function routeAuth(auth: KubeAuth, method: string, pathname: string, headers: IncomingHttpHeaders, body: Buffer): AuthAnswer | undefined {
  const decode = (): Obj => ((headers["content-type"] ?? "").startsWith(PROTOBUF) ? decodeProtobuf(body) : decodeObject(body.toString("utf8")));
  const seg = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  // /api/v1/namespaces/NS/serviceaccounts/NAME/token
  if (seg.length === 7 && seg[0] === "api" && seg[1] === "v1" && seg[2] === "namespaces" && seg[4] === "serviceaccounts" && seg[6] === "token") {
    if (method !== "POST") throw methodNotAllowed();
    return tokenRequest(auth, seg[3]!, seg[5]!, decode());
  }
  if (seg[0] !== "apis" || seg[2] !== "v1") return undefined;
  const rest = seg.slice(3);
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  const [plural, ...more] = rest;
  const known =
    (seg[1] === AUTHN && ["tokenreviews", "selfsubjectreviews"].includes(plural ?? "") && namespace === undefined) ||
    (seg[1] === AUTHZ && ["subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews"].includes(plural ?? "") && namespace === undefined) ||
    (seg[1] === AUTHZ && plural === "localsubjectaccessreviews" && namespace !== undefined);
  if (!known) return undefined;
  if (more.length) throw notFoundPath(pathname);
  if (method !== "POST") throw methodNotAllowed();
  const obj = decode();
  if (plural === "tokenreviews") return tokenReview(auth, obj);
  if (plural === "selfsubjectreviews") return selfSubjectReview(auth, headers);
  if (plural === "subjectaccessreviews") return subjectAccessReview(auth, obj);
  if (plural === "selfsubjectaccessreviews") return selfSubjectAccessReview(auth, obj, headers);
  if (plural === "selfsubjectrulesreviews") return selfSubjectRulesReview(auth, obj, headers);
  return localSubjectAccessReview(auth, obj, namespace!);
}

/**
 * token.go `TokenREST.Create`: a name or namespace in the body must be the
 * path's; the ServiceAccount must exist; audiences default to the API
 * server's; 10 minutes at least. The answer echoes the request (its metadata
 * too: kubectl sends none, so errors name "") with the token in `status`.
 */
function tokenRequest(auth: KubeAuth, namespace: string, name: string, req: Obj): AuthAnswer {
  const reqMeta = isObj(req.metadata) ? req.metadata : {};
  const kind = `TokenRequest.${AUTHN}`;
  if (reqMeta.name && reqMeta.name !== name) throw invalid(kind, name, [cause("metadata.name", reqMeta.name, "must match the service account name if specified")]);
  if (reqMeta.namespace && reqMeta.namespace !== namespace) throw invalid(kind, name, [cause("metadata.namespace", reqMeta.namespace, "must match the service account namespace if specified")]);
  const sa = auth.store.get("serviceaccounts", namespace, name);
  if (!sa) throw new HttpError(404, "NotFound", `serviceaccounts "${name}" not found`, [], { name, kind: "serviceaccounts" });
  const spec = isObj(req.spec) ? req.spec : {};
  const seconds = typeof spec.expirationSeconds === "number" ? spec.expirationSeconds : DEFAULT_EXPIRATION_SECONDS;
  // pkg/apis/authentication/validation ValidateTokenRequest.
  const causes: StatusCause[] = [];
  if (seconds < 600) causes.push(cause("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"));
  if (seconds > MAX_EXPIRATION_SECONDS) causes.push(cause("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"));
  if (causes.length) throw invalid(kind, String(reqMeta.name ?? ""), causes);
  const audiences = Array.isArray(spec.audiences) && spec.audiences.length ? (spec.audiences as string[]) : auth.apiAudiences;
  const { token, expiresAt } = auth.issue(namespace, name, { audiences, expirationSeconds: seconds });
  return {
    status: 201,
    body: {
      kind: "TokenRequest",
      apiVersion: `${AUTHN}/v1`,
      metadata: { ...reqMeta, ...EMPTY_META },
      spec: { ...spec, audiences, expirationSeconds: seconds, boundObjectRef: spec.boundObjectRef ?? null },
      status: { token, expirationTimestamp: rfc3339(expiresAt) },
    },
  };
}

/** storage.go `REST.Create`: a token is required; the answer echoes the spec with the authenticator's verdict. */
function tokenReview(auth: KubeAuth, req: Obj): AuthAnswer {
  const spec = isObj(req.spec) ? req.spec : {};
  if (typeof spec.token !== "string" || spec.token === "") throw new HttpError(400, "BadRequest", "token is required for TokenReview in authentication");
  const audiences = Array.isArray(spec.audiences) ? (spec.audiences as string[]) : undefined;
  const r = auth.reviewToken(spec.token, audiences);
  // The Go type's `user` is a struct (never omitted: `{}` when nobody); audiences and error are omitempty.
  const status: Obj = { authenticated: r.authenticated, user: r.user ?? {} };
  if (r.audiences?.length) status.audiences = r.audiences;
  if (r.error) status.error = r.error;
  return { status: 201, body: { kind: "TokenReview", apiVersion: `${AUTHN}/v1`, metadata: { ...EMPTY_META, ...(isObj(req.metadata) ? req.metadata : {}) }, spec, status } };
}

/** `pkg/registry/authentication/selfsubjectreview/rest.go`: who the caller is (`kubectl auth whoami`). */
function selfSubjectReview(auth: KubeAuth, headers: IncomingHttpHeaders): AuthAnswer {
  const user = auth.requestUser(headers);
  return { status: 201, body: { kind: "SelfSubjectReview", apiVersion: `${AUTHN}/v1`, metadata: EMPTY_META, status: { userInfo: user } } };
}

/** validation.go `ValidateSubjectAccessReviewSpec` (and the Self/Local variants), worded as there. */
function specCauses(spec: Obj, kind: "SubjectAccessReview" | "SelfSubjectAccessReview" | "LocalSubjectAccessReview"): StatusCause[] {
  const out: StatusCause[] = [];
  const hasRes = isObj(spec.resourceAttributes);
  const hasNonRes = isObj(spec.nonResourceAttributes);
  if (kind === "LocalSubjectAccessReview") {
    if (!hasRes) out.push(cause("spec.resourceAttributes", undefined, "resourceAttributes is required"));
    if (hasNonRes) out.push(cause("spec.nonResourceAttributes", spec.nonResourceAttributes, "disallowed on this kind of request"));
  } else {
    if (hasRes && hasNonRes) out.push(cause("spec.nonResourceAttributes", spec.nonResourceAttributes, "cannot be specified in combination with resourceAttributes"));
    if (!hasRes && !hasNonRes) out.push(cause("spec.resourceAttributes", spec.nonResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"));
  }
  const groups = Array.isArray(spec.groups) ? spec.groups : [];
  if (kind !== "SelfSubjectAccessReview" && !spec.user && groups.length === 0) out.push(cause("spec.user", spec.user ?? "", "at least one of user or group must be specified"));
  return out;
}

function answer(kind: string, spec: Obj, request: AccessRequest, auth: KubeAuth, metadata: Obj = EMPTY_META): AuthAnswer {
  const d = auth.authorize(request);
  // SubjectAccessReviewStatus: `allowed` always; `denied`, `reason`, `evaluationError` omitempty.
  const status: Obj = { allowed: d.allowed };
  if (d.denied) status.denied = true;
  if (d.reason) status.reason = d.reason;
  if (d.evaluationError) status.evaluationError = d.evaluationError;
  return { status: 201, body: { kind, apiVersion: `${AUTHZ}/v1`, metadata, spec, status } };
}

const attributes = (spec: Obj): Pick<AccessRequest, "resourceAttributes" | "nonResourceAttributes"> => ({
  ...(isObj(spec.resourceAttributes) ? { resourceAttributes: spec.resourceAttributes as ResourceAttributes } : {}),
  ...(isObj(spec.nonResourceAttributes) ? { nonResourceAttributes: spec.nonResourceAttributes as NonResourceAttributes } : {}),
});

function subjectAccessReview(auth: KubeAuth, req: Obj): AuthAnswer {
  const spec = isObj(req.spec) ? req.spec : {};
  const causes = specCauses(spec, "SubjectAccessReview");
  if (causes.length) throw invalid(`SubjectAccessReview.${AUTHZ}`, "", causes);
  const request: AccessRequest = {
    ...(typeof spec.user === "string" ? { user: spec.user } : {}),
    groups: Array.isArray(spec.groups) ? (spec.groups as string[]) : [],
    ...(typeof spec.uid === "string" ? { uid: spec.uid } : {}),
    ...attributes(spec),
  };
  return answer("SubjectAccessReview", spec, request, auth);
}

/** The caller's own rights: the user is whoever sent the request (see KubeAuth.requestUser). */
function selfSubjectAccessReview(auth: KubeAuth, req: Obj, headers: IncomingHttpHeaders): AuthAnswer {
  const spec = isObj(req.spec) ? req.spec : {};
  const causes = specCauses(spec, "SelfSubjectAccessReview");
  if (causes.length) throw invalid(`SelfSubjectAccessReview.${AUTHZ}`, "", causes);
  const user = auth.requestUser(headers);
  return answer("SelfSubjectAccessReview", spec, { user: user.username, groups: user.groups, ...(user.uid ? { uid: user.uid } : {}), ...attributes(spec) }, auth);
}

/**
 * `pkg/registry/authorization/selfsubjectrulesreview/rest.go`: every rule that
 * applies to the caller in `spec.namespace` (required), resource and
 * non-resource rules apart, as `kubectl auth can-i --list` shows them.
 */
function selfSubjectRulesReview(auth: KubeAuth, req: Obj, headers: IncomingHttpHeaders): AuthAnswer {
  const spec = isObj(req.spec) ? req.spec : {};
  if (typeof spec.namespace !== "string" || spec.namespace === "") throw new HttpError(400, "BadRequest", "no namespace on request");
  const { rules, error } = auth.rulesFor(auth.requestUser(headers), spec.namespace);
  const has = (xs: string[] | undefined): xs is string[] => (xs ?? []).length > 0;
  // rbac.go RulesFor: a rule with resources is a resource rule, one with nonResourceURLs a non-resource rule.
  const resourceRules = rules
    .filter((r) => has(r.resources))
    .map((r) => ({ verbs: r.verbs, ...(has(r.apiGroups) ? { apiGroups: r.apiGroups } : {}), resources: r.resources, ...(has(r.resourceNames) ? { resourceNames: r.resourceNames } : {}) }));
  const nonResourceRules = rules.filter((r) => has(r.nonResourceURLs)).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }));
  const status: Obj = { resourceRules, nonResourceRules, incomplete: false, ...(error ? { evaluationError: error } : {}) };
  return { status: 201, body: { kind: "SelfSubjectRulesReview", apiVersion: `${AUTHZ}/v1`, metadata: EMPTY_META, spec, status } };
}

/** A SubjectAccessReview confined to the namespace in the path: its resourceAttributes.namespace must be that one. */
function localSubjectAccessReview(auth: KubeAuth, req: Obj, namespace: string): AuthAnswer {
  const spec = isObj(req.spec) ? req.spec : {};
  const metaNs = isObj(req.metadata) ? req.metadata.namespace : undefined;
  if (metaNs !== undefined && metaNs !== "" && metaNs !== namespace) throw new HttpError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
  const causes = specCauses(spec, "LocalSubjectAccessReview");
  if (causes.length) throw invalid(`LocalSubjectAccessReview.${AUTHZ}`, "", causes);
  const res = spec.resourceAttributes as ResourceAttributes;
  if (res.namespace !== undefined && res.namespace !== "" && res.namespace !== namespace) throw new HttpError(400, "BadRequest", `spec.resourceAttributes.namespace must match namespace: ${namespace}`);
  const request: AccessRequest = {
    ...(typeof spec.user === "string" ? { user: spec.user } : {}),
    groups: Array.isArray(spec.groups) ? (spec.groups as string[]) : [],
    resourceAttributes: { ...res, namespace },
  };
  return answer("LocalSubjectAccessReview", spec, request, auth, { ...EMPTY_META, namespace });
}
