/**
 * Who may call the run API, and what they may do (OFFLOAD_AUTH): the
 * caller's Kubernetes identity and RBAC per namespace (`kubernetes`), a shared
 * token (`token`), or nobody checked (`none`).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ApiConfig } from "../../config/api.js";
import { Access } from "./access.js";

export { Access, OPEN_PATHS, isOpenPath } from "./access.js";
export { callerOf, ReviewUnavailableError, RUNS_RESOURCE, serviceAccountNamespace, type Caller, type RunVerb } from "./caller.js";
// Not re-exported as values: KubernetesAuth (in ./kubernetes.js) pulls in @kubernetes/client-node, which takes
// a second or more to load, and only OFFLOAD_AUTH=kubernetes needs it.
export type { KubernetesAuth, KubernetesAuthOptions } from "./kubernetes.js";

/**
 * The {@link Access} of `config.auth.mode`. `kubernetes` needs `kc`, the
 * kubeconfig the reviews are made with. `none` says loudly that anyone may do
 * anything.
 */
export async function createAccess(config: Pick<ApiConfig, "auth">, kc: KubeConfig | undefined, log: Logger): Promise<Access> {
  const { mode, audience, cacheTtlMs, cacheMaxEntries } = config.auth;
  switch (mode) {
    case "kubernetes": {
      if (!kc) throw new Error("OFFLOAD_AUTH=kubernetes needs a kubeconfig (startApi's kubeConfig option)");
      log.info({ auth: mode, audience, cacheSeconds: cacheTtlMs / 1000, cacheEntries: cacheMaxEntries }, "callers are authenticated by TokenReview and authorized by SubjectAccessReview");
      const { KubernetesAuth } = await import("./kubernetes.js");
      return new Access("kubernetes", new KubernetesAuth(kc, { audience, cacheTtlMs, cacheMaxEntries }, log));
    }
    case "token":
      return new Access("token");
    case "none":
      log.warn(
        { auth: mode },
        "OFFLOAD_AUTH=none: NO AUTHENTICATION: anyone who reaches this API may delay, read, cancel and retry every run; " +
          "for local development only (set OFFLOAD_AUTH=kubernetes in a cluster, or OFFLOAD_API_TOKEN)",
      );
      return new Access("none");
  }
}
