/** The shapes the auth part of the stand-in speaks in (the `authentication.k8s.io/v1` and `authorization.k8s.io/v1` types, as plain data). */

export interface IssueTokenOptions {
  /** The token's `aud`; default the API server's own audiences (its issuer), as a TokenRequest with no `spec.audiences` gets. */
  audiences?: string[];
  /**
   * Lifetime in seconds (default 3600). In process any positive number is taken, so a test can make a short-lived
   * token; over HTTP the TokenRequest refuses less than 600 as the real server does.
   */
  expirationSeconds?: number;
  /** When the token is issued (`iat`, `nbf`; default now): a moment longer ago than its lifetime makes an already-expired token. */
  issuedAt?: Date;
}

/** `user.Info` as a TokenReview's `status.user` carries it. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** A TokenReview's `status`. */
export interface TokenReviewResult {
  authenticated: boolean;
  user?: UserInfo;
  audiences?: string[];
  error?: string;
}

/** `spec.resourceAttributes` of an access review. Empty or missing fields mean "all" or "none" as in the real type. */
export interface ResourceAttributes {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

/** `spec.nonResourceAttributes` of an access review. */
export interface NonResourceAttributes {
  path?: string;
  verb?: string;
}

/** Who asks to do what: a SubjectAccessReview's spec, or the caller of a SelfSubjectAccessReview. */
export interface AccessRequest {
  user?: string;
  groups?: string[];
  uid?: string;
  extra?: Record<string, string[]>;
  resourceAttributes?: ResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
}

/** A SubjectAccessReview's `status`. `reason` is the RBAC authorizer's text; absent when nothing allows (as the real server answers a plain denial). */
export interface AccessDecision {
  allowed: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}
