import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { httpUrl, natsUrls, parseEnv, port, positive, startWaitSeconds } from "@offload/sdk/internal";
import { AUTH_MODES, DEFAULT_AUTH_AUDIENCE, LOG_LEVELS } from "../config/api.js";

const bool = (def: "true" | "false") =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], { error: "must be true or false" })
    .default(def)
    .transform((v) => v === "true" || v === "1" || v === "yes");

/**
 * The controller's configuration, from the environment. The Kubernetes
 * connection itself comes from the kubeconfig in use (`KUBECONFIG`,
 * `~/.kube/config`) or, inside a pod, from its service account.
 */
export const ControllerEnvSchema = z.object({
  /** Namespace to watch; empty watches every namespace. @defaultValue "" */
  OFFLOAD_WATCH_NAMESPACE: z.string().default(""),
  /**
   * NATS URL(s) given to worker pods as OFFLOAD_NATS_URL (not used by the controller itself). With
   * OFFLOAD_NATS_CREDENTIALS_SECRET, any credentials in it are replaced by references to that Secret.
   */
  OFFLOAD_NATS_URL: natsUrls.transform((l) => l.join(",")).optional(),
  /** The run API: TaskRuns are submitted here, and worker pods get it as OFFLOAD_API_URL. Without it, TaskRuns wait. */
  OFFLOAD_API_URL: httpUrl.optional(),
  /** Bearer token for the run API (the controller's own calls). */
  OFFLOAD_API_TOKEN: z.string().min(1).optional(),
  /** A Secret (key `token`) in each TaskWorker's namespace: worker pods get it as OFFLOAD_API_TOKEN. */
  OFFLOAD_API_TOKEN_SECRET: z.string().min(1).optional(),
  /**
   * A Secret (keys `user` and `password`) in each TaskWorker's namespace: worker pods get them as
   * OFFLOAD_NATS_USER / OFFLOAD_NATS_PASSWORD, and OFFLOAD_NATS_URL as
   * `nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@host:port` (expanded by Kubernetes).
   * Unset: worker pods get OFFLOAD_NATS_URL as it is.
   */
  OFFLOAD_NATS_CREDENTIALS_SECRET: z.string().min(1).optional(),
  /**
   * How the run API authenticates callers (its own OFFLOAD_AUTH: give both the same value). `kubernetes`: worker
   * pods get a projected ServiceAccount token for OFFLOAD_AUTH_AUDIENCE at /var/run/secrets/offload/token
   * (OFFLOAD_TOKEN_FILE) and no OFFLOAD_API_TOKEN; `token` and `none`: they get OFFLOAD_API_TOKEN from
   * OFFLOAD_API_TOKEN_SECRET, if set. @defaultValue "token"
   */
  OFFLOAD_AUTH: z.enum(AUTH_MODES, { error: `must be one of ${AUTH_MODES.join(", ")}` }).default("token"),
  /** The audience of the worker pods' projected token; the run API's OFFLOAD_AUTH_AUDIENCE. @defaultValue "offload" */
  OFFLOAD_AUTH_AUDIENCE: z.string().min(1).default(DEFAULT_AUTH_AUDIENCE),
  /** Campaign for a Lease before acting, so that only one replica reconciles. @defaultValue true */
  OFFLOAD_LEADER_ELECTION: bool("true"),
  /** Namespace of the leader-election Lease. @defaultValue the pod's namespace, else the kubeconfig's, else "default" */
  OFFLOAD_LEASE_NAMESPACE: z.string().min(1).optional(),
  /** Name of the leader-election Lease. @defaultValue "offload-controller" */
  OFFLOAD_LEASE_NAME: z.string().min(1).default("offload-controller"),
  /** Seconds a Lease is honoured without renewal (renew deadline is 2/3 of it). @defaultValue 15 */
  OFFLOAD_LEASE_DURATION_SECONDS: positive.default(15),
  /** This replica's identity in the Lease and in Events. @defaultValue hostname plus a random suffix */
  POD_NAME: z.string().min(1).optional(),
  /** Port of /healthz, /readyz and /metrics. @defaultValue 8082 */
  OFFLOAD_CONTROLLER_PORT: port.default(8082),
  /** pino log level. @defaultValue "info" */
  OFFLOAD_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Every this many seconds every object is reconciled again, to catch drift. @defaultValue 300 */
  OFFLOAD_RESYNC_SECONDS: positive.default(300),
  /** Seconds between polls of an unfinished TaskRun's run. @defaultValue 2 */
  OFFLOAD_TASKRUN_POLL_SECONDS: positive.default(2),
  /**
   * Seconds after a TaskRun's deletion during which the controller keeps trying to cancel its run while the run
   * API cannot be reached; then it lets the TaskRun go (a Warning event says so), so a dead API never holds up a
   * namespace's deletion. @defaultValue 300
   */
  OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS: positive.default(300),
  /** Seconds between refreshes of each TaskWorker's `status.backlog` from the run API. @defaultValue 15 */
  OFFLOAD_BACKLOG_SECONDS: positive.default(15),
  /** Seconds to wait at start for the Kubernetes API server to answer before exiting 1 with what was tried. @defaultValue 30 */
  OFFLOAD_START_WAIT_SECONDS: startWaitSeconds,
  /** Reconciles run at once. @defaultValue 4 */
  OFFLOAD_CONTROLLER_WORKERS: z.coerce.number().int().min(1).max(64).default(4),
});
export type ControllerEnv = z.infer<typeof ControllerEnvSchema>;

export function loadControllerEnv(env: NodeJS.ProcessEnv = process.env): ControllerEnv & { identity: string } {
  const parsed = parseEnv(ControllerEnvSchema, env, "offload-controller");
  return { ...parsed, identity: parsed.POD_NAME ?? `${hostname()}-${randomBytes(3).toString("hex")}` };
}
