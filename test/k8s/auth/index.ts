/**
 * Who a caller is and what it may do, as a real kube-apiserver (v1.32)
 * answers it: ServiceAccount tokens (TokenRequest, `tokens.ts`), their
 * review (TokenReview), RBAC with ClusterRole aggregation (`rbac.ts`) and the
 * access reviews (SubjectAccessReview, SelfSubjectAccessReview,
 * LocalSubjectAccessReview; `reviews.ts`). The stand-in's own requests stay
 * unauthenticated and unauthorized (every client is an admin): these are
 * answers for a program that asks, such as the run API checking its callers.
 */
export type { IssueTokenOptions, TokenReviewResult, UserInfo } from "./types.js";
export type { ResourceAttributes, NonResourceAttributes, AccessRequest, AccessDecision } from "./types.js";
export { KubeAuth, type AuthStore } from "./auth.js";
