/**
 * The controller's first contact with Kubernetes: which kubeconfig it uses,
 * and a bounded wait for the API server to answer. `KubeConfig.loadFromDefault()`
 * silently falls back to `http://localhost:8080` when it finds nothing, and the
 * informers then retry forever; here a missing or broken kubeconfig is one line
 * at once, and an unreachable server one line after `OFFLOAD_START_WAIT_SECONDS`.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { ApiException, KubeConfig, VersionApi } from "@kubernetes/client-node";
import { ConfigError, UnreachableError, describeSocketError, retryUntil } from "@offload/sdk/internal";
import type { Logger } from "pino";

/** Where a pod's service account token is mounted; its presence means "in a cluster", as for client-node. */
export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** A loaded kubeconfig and what to call it in messages. */
export interface ClusterConnection {
  readonly kc: KubeConfig;
  /** `KUBECONFIG=/path`, `~/.kube/config (/root/.kube/config)` or `in-cluster (service account)`. */
  readonly source: string;
  readonly context: string;
  readonly server: string;
}

/**
 * Loads the kubeconfig the way kubectl picks it (`KUBECONFIG`, else
 * `~/.kube/config`, else the pod's service account) and checks that it names
 * a context and a server. Throws a `ConfigError` naming the file otherwise.
 */
export function loadCluster(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
  tokenPath: string = SERVICE_ACCOUNT_TOKEN,
  program = "offload-controller",
): ClusterConnection {
  const kc = new KubeConfig();
  const homeConfig = join(home, ".kube", "config");
  let source: string;
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter(Boolean);
    // Like kubectl, files of the list that do not exist are skipped; all of them missing is an error.
    const present = files.filter((f) => existsSync(f));
    source = `KUBECONFIG=${env.KUBECONFIG}`;
    if (!present.length) {
      throw new ConfigError(`${program}: KUBECONFIG names ${files.join(", ")}, which does not exist; set KUBECONFIG to a kubeconfig file (kubectl config view --raw > FILE)`);
    }
    present.forEach((file, i) => {
      const one = readKubeconfig(file, "KUBECONFIG", program);
      if (i === 0) kc.loadFromString(one.exportConfig());
      else mergeKubeconfig(kc, one, file, program);
    });
  } else if (existsSync(homeConfig)) {
    source = `~/.kube/config (${homeConfig})`;
    kc.loadFromString(readKubeconfig(homeConfig, "~/.kube/config", program).exportConfig());
  } else if (existsSync(tokenPath) && env.KUBERNETES_SERVICE_HOST) {
    source = "in-cluster (the pod's service account)";
    kc.loadFromCluster();
  } else {
    const notInPod = existsSync(tokenPath) ? `${tokenPath} exists but KUBERNETES_SERVICE_HOST is unset` : `this is not a pod (no ${tokenPath})`;
    throw new ConfigError(
      `${program}: no Kubernetes cluster configured: KUBECONFIG is unset, ${homeConfig} does not exist, and ${notInPod}; ` +
        `set KUBECONFIG to a kubeconfig file, or run ${program === "offload-controller" ? "the controller" : program} in the cluster (helm install offload charts/offload)`,
    );
  }
  const context = kc.getCurrentContext();
  if (!context || !kc.getContextObject(context)) {
    throw new ConfigError(
      `${program}: the kubeconfig (${source}) has ${context ? `no context "${context}" (its current-context)` : "no current-context"}; ` +
        `pick one with kubectl config use-context NAME (it has: ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`,
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    const named = kc.getContextObject(context)?.cluster;
    throw new ConfigError(`${program}: context "${context}" of the kubeconfig (${source}) names cluster "${named ?? ""}", which it does not define with a server URL; fix the kubeconfig`);
  }
  return { kc, source, context, server: cluster.server };
}

/**
 * Adds a later file of `KUBECONFIG` to what the earlier ones loaded. As with kubectl, the first file that sets
 * a current-context keeps it (client-node's default lets the last one win). client-node refuses a cluster, user
 * or context name that an earlier file already defines; that becomes a `ConfigError` naming the file.
 */
function mergeKubeconfig(kc: KubeConfig, one: KubeConfig, file: string, program: string): void {
  try {
    kc.mergeConfig(one, Boolean(kc.getCurrentContext()));
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0];
    throw new ConfigError(
      `${program}: cannot merge the kubeconfig ${file} (KUBECONFIG) with the files before it: ${reason}, which an earlier file defines too; rename it in one of them, or list only one in KUBECONFIG`,
    );
  }
}

/** One kubeconfig file, or a `ConfigError` naming it and what is wrong with it. */
function readKubeconfig(file: string, from: string, program: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split("\n")[0];
    throw new ConfigError(`${program}: cannot read the kubeconfig ${file} (${from}): ${reason}; check it with kubectl --kubeconfig ${file} config view`);
  }
  return kc;
}

/**
 * Waits up to `waitSeconds` for the API server to answer `GET /version`,
 * one progress line at most every 5 s. Any HTTP answer but 401 counts as
 * reachable (RBAC is the reconcilers' business); 401 means the credentials
 * are wrong and no wait mends that. Throws an `UnreachableError` naming the
 * kubeconfig, context and server when the wait is over.
 */
export async function waitForCluster(conn: ClusterConnection, waitSeconds: number, log: Logger, program = "offload-controller"): Promise<void> {
  const version = conn.kc.makeApiClient(VersionApi);
  const where = `${conn.server} (context "${conn.context}", kubeconfig ${conn.source})`;
  const outcome = await retryUntil(
    async (timeoutMs) => {
      try {
        await withTimeout(version.getCode(), timeoutMs);
        return undefined;
      } catch (err) {
        if (err instanceof ApiException) {
          if (err.code === 401) {
            throw new ConfigError(`${program}: the Kubernetes API server at ${where} refused the credentials (401 Unauthorized); renew them, e.g. log in again, or pick another context`);
          }
          return undefined;
        }
        return reasonOf(err);
      }
    },
    {
      waitSeconds,
      onWaiting: ({ elapsedSeconds, reason }) =>
        log.warn({ server: conn.server, context: conn.context, kubeconfig: conn.source, elapsedSeconds, waitSeconds }, `waiting for the Kubernetes API server at ${conn.server}: ${reason}; giving up after ${waitSeconds} s`),
    },
  );
  if (outcome.ok) return;
  throw new UnreachableError(
    `${program}: cannot reach the Kubernetes API server at ${where} within ${waitSeconds} s (OFFLOAD_START_WAIT_SECONDS): ${outcome.reason}; ` +
      `check that the cluster runs and that kubectl --context ${conn.context} version answers, or set KUBECONFIG / pick another context`,
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${(ms / 1000).toFixed(1)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The root cause of a failed request in a few words: client-node wraps the socket's error (with its code) in a fetch error. */
function reasonOf(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string") {
      const described = describeSocketError(e as NodeJS.ErrnoException);
      return described.startsWith(code) ? described : `${code}: ${described}`;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : String(err);
}
