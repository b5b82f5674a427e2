/**
 * ServiceAccount tokens as kube-apiserver issues and checks them: RS256 JWTs
 * with the claims of `pkg/serviceaccount/claims.go` (`Claims`), signed with a
 * key made when first needed (one per stand-in, as each cluster has its own
 * `sa.key`), and checked as `pkg/serviceaccount/jwt.go`
 * (`jwtTokenAuthenticator.AuthenticateToken`) and `claims.go`
 * (`validator.Validate`) do, with their error texts.
 */
import { createHash, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from "node:crypto";
import type { Obj } from "../fields.js";

/** Default lifetime of a requested token (SetDefaults_TokenRequestSpec). */
export const DEFAULT_EXPIRATION_SECONDS = 3600;

/** go-jose's `jwt.DefaultLeeway`: `exp` and `nbf` are checked with a minute of slack. */
const LEEWAY_SECONDS = 60;

/** The private claims under `kubernetes.io` (claims.go's `privateClaims`). */
interface KubernetesClaims {
  namespace: string;
  serviceaccount: { name: string; uid: string };
}

interface Claims {
  aud: string[];
  exp: number;
  iat: number;
  iss: string;
  jti: string;
  "kubernetes.io": KubernetesClaims;
  nbf: number;
  sub: string;
}

/** A token the signature and claims of which were checked: who it names, for which audiences. */
export interface VerifiedToken {
  namespace: string;
  name: string;
  uid: string;
  jti: string;
  audiences: string[];
}

/** Why a token is refused: `unrecognized` when no authenticator claims it (malformed, another issuer), else the authenticator's error. */
export type TokenFailure = { kind: "unrecognized" } | { kind: "error"; message: string };

const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");

/** Go's `%q` of a string slice (`authenticator.Audiences`): `["a" "b"]`. */
export const goQuotedList = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(" ")}]`;

export class TokenSigner {
  #key: { privateKey: KeyObject; publicKey: KeyObject; kid: string } | undefined;

  constructor(readonly issuer: string) {}

  /** The key pair, made on first use: 2048-bit RSA as kubeadm's `sa.key`; the key id is jwt.go's `keyIDFromPublicKey` (SHA-256 of the DER public key). */
  get #keys(): { privateKey: KeyObject; publicKey: KeyObject; kid: string } {
    if (!this.#key) {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const der = publicKey.export({ type: "spki", format: "der" });
      this.#key = { privateKey, publicKey, kid: b64url(createHash("sha256").update(der).digest()) };
    }
    return this.#key;
  }

  /** The public key in PEM form (what `--service-account-key-file` would hold), for a test that checks signatures itself. */
  get publicKeyPem(): string {
    return this.#keys.publicKey.export({ type: "spki", format: "pem" }).toString();
  }

  /** Signs a token for ServiceAccount `namespace/name` (uid `uid`), `audiences`, valid `expirationSeconds` from `issuedAt`. */
  issue(sa: { namespace: string; name: string; uid: string }, audiences: string[], expirationSeconds: number, issuedAt: Date): { token: string; expiresAt: Date } {
    const iat = Math.floor(issuedAt.getTime() / 1000);
    const exp = iat + expirationSeconds;
    // The claims in the order go-jose writes them (it marshals a merged map: keys sorted).
    const claims: Claims = {
      aud: audiences,
      exp,
      iat,
      iss: this.issuer,
      jti: randomUUID(),
      "kubernetes.io": { namespace: sa.namespace, serviceaccount: { name: sa.name, uid: sa.uid } },
      nbf: iat,
      sub: `system:serviceaccount:${sa.namespace}:${sa.name}`,
    };
    const { privateKey, kid } = this.#keys;
    const input = `${b64url(JSON.stringify({ alg: "RS256", kid }))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(input), privateKey);
    return { token: `${input}.${b64url(signature)}`, expiresAt: new Date(exp * 1000) };
  }

  /**
   * Checks a token as the service-account token authenticator does, in its
   * order: the issuer (read before the signature: another issuer's token is not
   * this authenticator's to refuse), the signature, the audiences against
   * `wanted`, then `exp`/`nbf` with go-jose's leeway. The ServiceAccount
   * lookup is the caller's (it needs the store).
   */
  verify(token: string, wanted: readonly string[], now: Date): { ok: true; token: VerifiedToken } | { ok: false; failure: TokenFailure } {
    const unrecognized = { ok: false as const, failure: { kind: "unrecognized" as const } };
    const error = (message: string): { ok: false; failure: TokenFailure } => ({ ok: false, failure: { kind: "error", message } });
    // jwt.go hasCorrectIssuer: three dot-separated parts, a JSON payload, this issuer; anything else is not ours.
    if (token.trim().startsWith("{")) return unrecognized;
    const parts = token.split(".");
    if (parts.length !== 3) return unrecognized;
    const [head, body, sig] = parts as [string, string, string];
    let claims: Obj;
    try {
      claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Obj;
    } catch {
      return unrecognized;
    }
    if (typeof claims !== "object" || claims === null || claims.iss !== this.issuer) return unrecognized;
    let header: Obj;
    try {
      header = JSON.parse(Buffer.from(head, "base64url").toString("utf8")) as Obj;
    } catch {
      return unrecognized;
    }
    const { publicKey, kid } = this.#keys;
    if (typeof header.kid === "string" && header.kid !== "" && header.kid !== kid) return error("invalid signature, no keys found");
    // go-jose's error when the signature does not verify with the key.
    if (header.alg !== "RS256" || !verify("sha256", Buffer.from(`${head}.${body}`), publicKey, Buffer.from(sig, "base64url"))) {
      return error("go-jose/go-jose: error in cryptographic primitive");
    }
    // An empty `aud` (a legacy token) means the API server's own audiences; the caller passes those as `wanted` by default.
    const tokenAuds = Array.isArray(claims.aud) ? (claims.aud as string[]) : typeof claims.aud === "string" ? [claims.aud] : [];
    const auds = tokenAuds.filter((a) => wanted.includes(a));
    if (auds.length === 0) return error(`token audiences ${goQuotedList(tokenAuds)} is invalid for the target audiences ${goQuotedList(wanted)}`);
    const t = Math.floor(now.getTime() / 1000);
    if (typeof claims.exp === "number" && t > claims.exp + LEEWAY_SECONDS) return error("service account token has expired");
    if (typeof claims.nbf === "number" && t + LEEWAY_SECONDS < claims.nbf) return error("service account token is not valid yet");
    const k = (claims["kubernetes.io"] ?? {}) as Partial<KubernetesClaims>;
    return {
      ok: true,
      token: {
        namespace: k.namespace ?? "",
        name: k.serviceaccount?.name ?? "",
        uid: k.serviceaccount?.uid ?? "",
        jti: typeof claims.jti === "string" ? claims.jti : "",
        audiences: auds,
      },
    };
  }
}
