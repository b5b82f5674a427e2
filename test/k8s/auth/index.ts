/**
 * Who a caller is and what it may do, as a real kube-apiserver (v1.32)
 * answers it. None of this is in the conformance corpus: each rule follows
 * the kube-apiserver source file its module names.
 *
 * - ServiceAccount tokens (`tokens.ts`): `POST .../serviceaccounts/NAME/token`
 *   (TokenRequest; audiences default to the API server's, 600 s at least) and,
 *   in process, `fake.issueToken(ns, sa, { audiences, expirationSeconds, issuedAt })`
 *   (any lifetime; an `issuedAt` further back than the lifetime plus go-jose's
 *   minute of leeway makes an expired token). RS256 JWTs with the real claims,
 *   signed by a key made per stand-in (`fake.auth.publicKeyPem`).
 * - TokenReview: the user, groups (`system:serviceaccounts`,
 *   `system:serviceaccounts:NS`, `system:authenticated`) and credential-id
 *   extra of a good token; for a bad one `authenticated: false` and the real
 *   error text (`invalid bearer token` for a malformed token, else
 *   `[invalid bearer token, …]` with the audience, expiry, signature or
 *   ServiceAccount problem). `fake.auth.reviewToken(token, audiences)` in process.
 * - RBAC (`rbac.ts`, `rbac-objects.ts`, `bootstrap.ts`): Roles, ClusterRoles,
 *   RoleBindings, ClusterRoleBindings (defaulted and validated), evaluated
 *   with the RBAC authorizer's allow reasons; ClusterRole aggregation; the
 *   built-in `cluster-admin`, `admin`, `edit`, `view` (aggregated from
 *   `rbac.authorization.k8s.io/aggregate-to-*` labels), `system:auth-delegator`,
 *   `system:basic-user`, `system:discovery`, `system:public-info-viewer`.
 *   `system:masters` is allowed everything.
 * - The access reviews (`reviews.ts`): SubjectAccessReview,
 *   LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview
 *   and SelfSubjectReview,
 *   create-only and never stored; `fake.auth.authorize(spec)` in process.
 *   kubectl's protobuf bodies for them are read (`protobuf.ts`), so
 *   `kubectl auth can-i [--list] --as=…`, `kubectl auth whoami` and `kubectl create token` work.
 *
 * Not modelled: the stand-in's own requests stay unauthenticated and
 * unauthorized (its clients are a `system:masters` admin, or the
 * ServiceAccount of a token it issued where a review asks who the caller is);
 * tokens bound to pods or secrets; RBAC's escalation check; webhook and node
 * authorizers.
 */
export type { IssueTokenOptions, TokenReviewResult, UserInfo } from "./types.js";
export type { ResourceAttributes, NonResourceAttributes, AccessRequest, AccessDecision } from "./types.js";
export { KubeAuth, ADMIN_USER, type AuthStore } from "./auth.js";
