import type { AuthMode } from "../config/api.js";
import { API_VERSION, CONTROLLER_VOLUMES, TASKWORKER, type TaskWorker } from "../crds/schemas.js";
import { L, MANAGED_BY, selectorLabels } from "./labels.js";

/** What the controller adds to every worker pod, from its own configuration. */
export interface WorkerDefaults {
  /** OFFLOAD_NATS_URL given to workers. */
  natsUrl?: string;
  /** OFFLOAD_API_URL given to workers. */
  apiUrl?: string;
  /** Name of a Secret (in the TaskWorker's namespace) whose key `token` becomes OFFLOAD_API_TOKEN. */
  apiTokenSecret?: string;
  /**
   * Name of a Secret (in the TaskWorker's namespace) with keys `user` and `password`: they become
   * OFFLOAD_NATS_USER / OFFLOAD_NATS_PASSWORD, and every URL in OFFLOAD_NATS_URL carries
   * `$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@` (Kubernetes expands it in the pod), so the
   * password is never in the Deployment. Credentials already in `natsUrl` are dropped.
   */
  natsCredentialsSecret?: string;
  /**
   * How the run API authenticates callers (the controller's OFFLOAD_AUTH). With `kubernetes`, worker pods get a
   * projected ServiceAccount token for `audience` at WORKER_TOKEN_FILE (OFFLOAD_TOKEN_FILE), so that a task's
   * `delay()` is made as the pod's ServiceAccount, and no OFFLOAD_API_TOKEN. @defaultValue token mode
   */
  auth?: { mode: AuthMode; audience: string };
}

/** Where worker pods find their run API token with auth `kubernetes`: the SDK's default OFFLOAD_TOKEN_FILE. */
export const WORKER_TOKEN_DIR = "/var/run/secrets/offload";
export const WORKER_TOKEN_FILE = `${WORKER_TOKEN_DIR}/token`;
/**
 * Lifetime asked for the projected token. The kubelet renews it at 80% of this (and the SDK re-reads the file), so
 * it only bounds how long a stolen token stays useful; an hour is the kubelet's own default.
 */
export const WORKER_TOKEN_SECONDS = 3600;

/**
 * The restricted Pod Security Standard, which worker pods meet unless a TaskWorker says otherwise. 1000:1000 is
 * the worker image's USER; fsGroup makes the projected token and volumes readable by it.
 */
export const DEFAULT_POD_SECURITY_CONTEXT: Readonly<Record<string, unknown>> = Object.freeze({
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  fsGroup: 1000,
  fsGroupChangePolicy: "OnRootMismatch",
  seccompProfile: { type: "RuntimeDefault" },
});
export const DEFAULT_CONTAINER_SECURITY_CONTEXT: Readonly<Record<string, unknown>> = Object.freeze({
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
});
/** Size cap of the writable /tmp a read-only root filesystem needs (tasks needing more mount their own volume there). */
const TMP_SIZE_LIMIT = "256Mi";

/** The userinfo worker pods' NATS URLs carry when the controller has a NATS credentials Secret. */
const NATS_URL_CREDENTIALS = "$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)";

/**
 * `urls` (comma-separated) with each URL's credentials, if any, replaced by `userinfo`
 * (`host:port` becomes `nats://userinfo@host:port`). The chart gives the controller URLs
 * without credentials; dropping any is for a URL set by hand that still has them.
 */
export function withNatsCredentials(urls: string, userinfo: string): string {
  return urls
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => {
      const m = /^([a-z][\w+.-]*):\/\/(.*)$/is.exec(u);
      const scheme = m ? (m[1] as string) : "nats";
      const rest = m ? (m[2] as string) : u;
      return `${scheme}://${userinfo}@${rest.slice(rest.lastIndexOf("@") + 1)}`;
    })
    .join(",");
}

/** Port of the worker's health server: `/healthz` (liveness) and `/readyz` (readiness). */
export const WORKER_HEALTH_PORT = 8081;
/** Seconds added to `drainSeconds` for the pod's termination grace period: time to stop after draining. */
export const TERMINATION_MARGIN_SECONDS = 15;
/** The worker container's name. */
const WORKER_CONTAINER = "worker";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

/**
 * The Deployment a TaskWorker asks for: exactly the fields the controller
 * owns, ready for server-side apply. Pure: the same TaskWorker and defaults
 * always give the same object, so that an apply of an unchanged TaskWorker
 * changes nothing.
 */
export function desiredDeployment(tw: TaskWorker, defaults: WorkerDefaults = {}): Record<string, unknown> {
  const name = tw.metadata.name;
  const spec = tw.spec;
  const pt = spec.podTemplate ?? {};
  const select = selectorLabels(name);
  const kubeAuth = defaults.auth?.mode === "kubernetes" ? defaults.auth : undefined;
  const ownLabels = { ...select, [L.managedBy]: MANAGED_BY, [L.taskworker]: name };

  const env = mergeEnv(
    [
      // The credentials first: OFFLOAD_NATS_URL refers to them, and $(VAR) only expands variables defined earlier.
      ...(defaults.natsCredentialsSecret
        ? [
            { name: "OFFLOAD_NATS_USER", valueFrom: { secretKeyRef: { name: defaults.natsCredentialsSecret, key: "user" } } },
            { name: "OFFLOAD_NATS_PASSWORD", valueFrom: { secretKeyRef: { name: defaults.natsCredentialsSecret, key: "password" } } },
          ]
        : []),
      ...(defaults.natsUrl
        ? [
            {
              name: "OFFLOAD_NATS_URL",
              value: defaults.natsCredentialsSecret ? withNatsCredentials(defaults.natsUrl, NATS_URL_CREDENTIALS) : defaults.natsUrl,
            },
          ]
        : []),
      ...(defaults.apiUrl ? [{ name: "OFFLOAD_API_URL", value: defaults.apiUrl }] : []),
      // With kubernetes auth the pod presents its own ServiceAccount's token; a shared one would override it (the SDK prefers OFFLOAD_API_TOKEN).
      ...(defaults.apiTokenSecret && !kubeAuth
        ? [{ name: "OFFLOAD_API_TOKEN", valueFrom: { secretKeyRef: { name: defaults.apiTokenSecret, key: "token" } } }]
        : []),
    ],
    (spec.env ?? []) as EnvVar[],
    [
      { name: "OFFLOAD_MODULE", value: spec.module },
      ...(spec.tasks?.length ? [{ name: "OFFLOAD_TASKS", value: spec.tasks.join(",") }] : []),
      { name: "OFFLOAD_CONCURRENCY", value: String(spec.concurrency) },
      { name: "OFFLOAD_DRAIN_SECONDS", value: String(spec.drainSeconds) },
      { name: "OFFLOAD_WORKER_PORT", value: String(WORKER_HEALTH_PORT) },
      { name: "OFFLOAD_WORKER_ID", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      ...(kubeAuth ? [{ name: "OFFLOAD_TOKEN_FILE", value: WORKER_TOKEN_FILE }] : []),
    ],
  );

  // Ours first, then the user's; a user's mount at one of our paths (a bigger /tmp, say) replaces ours.
  const userMounts = pt.volumeMounts ?? [];
  const ownVolumes = [
    { volume: { name: CONTROLLER_VOLUMES.tmp, emptyDir: { sizeLimit: TMP_SIZE_LIMIT } }, mount: { name: CONTROLLER_VOLUMES.tmp, mountPath: "/tmp" } },
    ...(kubeAuth
      ? [
          {
            volume: {
              name: CONTROLLER_VOLUMES.token,
              projected: {
                sources: [{ serviceAccountToken: { audience: kubeAuth.audience, expirationSeconds: WORKER_TOKEN_SECONDS, path: "token" } }],
              },
            },
            mount: { name: CONTROLLER_VOLUMES.token, mountPath: WORKER_TOKEN_DIR, readOnly: true },
          },
        ]
      : []),
  ].filter((o) => !userMounts.some((m) => m.mountPath === o.mount.mountPath));

  const container: Record<string, unknown> = {
    name: WORKER_CONTAINER,
    image: spec.image,
    env,
    ports: [{ name: "health", containerPort: WORKER_HEALTH_PORT, protocol: "TCP" }],
    livenessProbe: { httpGet: { path: "/healthz", port: "health" }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 5, failureThreshold: 2 },
  };
  if (spec.resources && Object.keys(spec.resources).length) container.resources = spec.resources;
  container.securityContext = mergeFields(DEFAULT_CONTAINER_SECURITY_CONTEXT, pt.containerSecurityContext);
  container.volumeMounts = [...ownVolumes.map((o) => o.mount), ...userMounts];

  const podSpec: Record<string, unknown> = {
    automountServiceAccountToken: pt.automountServiceAccountToken ?? false,
    securityContext: mergeFields(DEFAULT_POD_SECURITY_CONTEXT, pt.securityContext),
    containers: [container],
    terminationGracePeriodSeconds: spec.drainSeconds + TERMINATION_MARGIN_SECONDS,
    volumes: [...ownVolumes.map((o) => o.volume), ...(pt.volumes ?? [])],
  };
  if (pt.serviceAccountName) podSpec.serviceAccountName = pt.serviceAccountName;
  if (pt.nodeSelector && Object.keys(pt.nodeSelector).length) podSpec.nodeSelector = pt.nodeSelector;
  if (pt.tolerations?.length) podSpec.tolerations = pt.tolerations;
  if (pt.affinity && Object.keys(pt.affinity).length) podSpec.affinity = pt.affinity;

  const podMeta: Record<string, unknown> = { labels: { ...(pt.labels ?? {}), ...ownLabels } };
  if (pt.annotations && Object.keys(pt.annotations).length) podMeta.annotations = pt.annotations;

  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name,
      namespace: tw.metadata.namespace,
      labels: ownLabels,
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: TASKWORKER.kind,
          name,
          uid: tw.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: select },
      template: { metadata: podMeta, spec: podSpec },
    },
  };
}

/** Later lists win by name; the order of first appearance is kept so the pod spec is stable. */
function mergeEnv(...lists: EnvVar[][]): EnvVar[] {
  const byName = new Map<string, EnvVar>();
  for (const list of lists) for (const e of list) byName.set(e.name, e);
  return [...byName.values()];
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `over` merged into `base` field by field, objects recursively, lists and scalars replaced: the rule the
 * TaskWorker's security-context fields document, so that setting one field keeps every other default.
 */
export function mergeFields(base: Readonly<Record<string, unknown>>, over: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(over ?? {})) {
    if (v === undefined) continue;
    const mine = out[k];
    out[k] = isPlainObject(mine) && isPlainObject(v) ? mergeFields(mine, v) : structuredClone(v);
  }
  return out;
}
