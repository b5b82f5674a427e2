import { describe, expect, it } from "vitest";
import { TaskWorkerSchema, type TaskWorker } from "../../operator/src/crds/schemas.js";
import { desiredDeployment, TERMINATION_MARGIN_SECONDS, WORKER_HEALTH_PORT, withNatsCredentials, type WorkerDefaults } from "../../operator/src/controller/desired.js";

type Mount = { name: string; mountPath: string; readOnly?: boolean };
type Volume = { name: string; [source: string]: unknown };
type Container = { name: string; image: string; env: { name: string; value?: string; valueFrom?: unknown }[]; resources?: unknown; volumeMounts: Mount[]; ports: unknown; livenessProbe: unknown; readinessProbe: unknown; securityContext: Record<string, unknown> };
type PodSpec = { containers: Container[]; terminationGracePeriodSeconds: number; serviceAccountName?: string; nodeSelector?: unknown; tolerations?: unknown; affinity?: unknown; volumes: Volume[]; securityContext: Record<string, unknown>; automountServiceAccountToken: boolean };
type Deployment = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences: unknown[] };
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
};

function tw(spec: Record<string, unknown>, name = "pool"): TaskWorker {
  return TaskWorkerSchema.parse({
    apiVersion: "offload.dev/v1alpha1",
    kind: "TaskWorker",
    metadata: { name, namespace: "ns1", uid: "uid-1", generation: 1 },
    spec: { image: "img:1", module: "./tasks.js", ...spec },
  });
}
const build = (spec: Record<string, unknown>, defaults: WorkerDefaults = {}): Deployment => desiredDeployment(tw(spec), defaults) as unknown as Deployment;
const container = (d: Deployment): Container => d.spec.template.spec.containers[0]!;
const envOf = (d: Deployment): Record<string, unknown> => Object.fromEntries(container(d).env.map((e) => [e.name, e.value ?? e.valueFrom]));

describe("desiredDeployment (pure)", () => {
  it("names, labels, selector and owner reference", () => {
    const d = build({});
    expect(d.apiVersion).toBe("apps/v1");
    expect(d.kind).toBe("Deployment");
    expect(d.metadata).toMatchObject({ name: "pool", namespace: "ns1" });
    const labels = {
      "app.kubernetes.io/name": "offload-worker",
      "app.kubernetes.io/instance": "pool",
      "app.kubernetes.io/managed-by": "offload-controller",
      "offload.dev/taskworker": "pool",
    };
    expect(d.metadata.labels).toEqual(labels);
    expect(d.spec.template.metadata.labels).toEqual(labels);
    expect(d.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/name": "offload-worker", "app.kubernetes.io/instance": "pool" });
    expect(d.metadata.ownerReferences).toEqual([{ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", name: "pool", uid: "uid-1", controller: true, blockOwnerDeletion: true }]);
  });

  it("is deterministic (same input, same output)", () => {
    expect(build({ tasks: ["a", "b"], env: [{ name: "X", value: "1" }] })).toEqual(build({ tasks: ["a", "b"], env: [{ name: "X", value: "1" }] }));
  });

  it("image", () => {
    expect(container(build({ image: "registry/x:2" })).image).toBe("registry/x:2");
    expect(container(build({})).name).toBe("worker");
  });

  it("module", () => {
    expect(envOf(build({ module: "/app/dist/t.js" })).OFFLOAD_MODULE).toBe("/app/dist/t.js");
  });

  it("tasks: listed, or left out (every task of the module)", () => {
    expect(envOf(build({ tasks: ["resize-image", "send-email"] })).OFFLOAD_TASKS).toBe("resize-image,send-email");
    expect(envOf(build({}))).not.toHaveProperty("OFFLOAD_TASKS");
  });

  it("replicas (default 1)", () => {
    expect(build({ replicas: 5 }).spec.replicas).toBe(5);
    expect(build({ replicas: 0 }).spec.replicas).toBe(0);
    expect(build({}).spec.replicas).toBe(1);
  });

  it("concurrency (default 4, as the worker's)", () => {
    expect(envOf(build({ concurrency: 16 })).OFFLOAD_CONCURRENCY).toBe("16");
    expect(envOf(build({})).OFFLOAD_CONCURRENCY).toBe("4");
  });

  it("drainSeconds: env and termination grace period (default 30)", () => {
    const d = build({ drainSeconds: 120 });
    expect(envOf(d).OFFLOAD_DRAIN_SECONDS).toBe("120");
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(120 + TERMINATION_MARGIN_SECONDS);
    expect(build({}).spec.template.spec.terminationGracePeriodSeconds).toBe(30 + TERMINATION_MARGIN_SECONDS);
  });

  it("env: user variables, controller defaults, token from a Secret; spec-derived values win", () => {
    const d = build(
      {
        env: [
          { name: "A", value: "1" },
          { name: "B", valueFrom: { configMapKeyRef: { name: "cm", key: "b" } } },
          { name: "OFFLOAD_NATS_URL", value: "nats://mine:4222" },
          { name: "OFFLOAD_MODULE", value: "ignored" },
        ],
      },
      { natsUrl: "nats://nats:4222", apiUrl: "http://api:8080", apiTokenSecret: "api-token" },
    );
    const env = envOf(d);
    expect(env.A).toBe("1");
    expect(env.B).toEqual({ configMapKeyRef: { name: "cm", key: "b" } });
    expect(env.OFFLOAD_NATS_URL).toBe("nats://mine:4222");
    expect(env.OFFLOAD_API_URL).toBe("http://api:8080");
    expect(env.OFFLOAD_API_TOKEN).toEqual({ secretKeyRef: { name: "api-token", key: "token" } });
    expect(env.OFFLOAD_MODULE).toBe("./tasks.js");
    const names = container(d).env.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("env: nothing from the controller when it is not configured", () => {
    const env = envOf(build({}));
    expect(env).not.toHaveProperty("OFFLOAD_NATS_URL");
    expect(env).not.toHaveProperty("OFFLOAD_API_URL");
    expect(env).not.toHaveProperty("OFFLOAD_API_TOKEN");
  });

  it("env: NATS credentials from a Secret, defined before the URL that refers to them; no password in the Deployment", () => {
    const d = build({}, { natsUrl: "nats://offload:s3cret@nats.offload.svc:4222", natsCredentialsSecret: "nats-auth" });
    const env = envOf(d);
    expect(env.OFFLOAD_NATS_USER).toEqual({ secretKeyRef: { name: "nats-auth", key: "user" } });
    expect(env.OFFLOAD_NATS_PASSWORD).toEqual({ secretKeyRef: { name: "nats-auth", key: "password" } });
    expect(env.OFFLOAD_NATS_URL).toBe("nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@nats.offload.svc:4222");
    const names = container(d).env.map((e) => e.name);
    // Kubernetes expands $(VAR) only for variables defined earlier in the list.
    expect(names.indexOf("OFFLOAD_NATS_USER")).toBeLessThan(names.indexOf("OFFLOAD_NATS_URL"));
    expect(names.indexOf("OFFLOAD_NATS_PASSWORD")).toBeLessThan(names.indexOf("OFFLOAD_NATS_URL"));
    expect(JSON.stringify(d)).not.toContain("s3cret");
    // Deterministic, as every other field.
    expect(build({}, { natsUrl: "nats://n:4222", natsCredentialsSecret: "nats-auth" })).toEqual(build({}, { natsUrl: "nats://n:4222", natsCredentialsSecret: "nats-auth" }));
  });

  it("env: every URL of a list gets the credentials; a user's own OFFLOAD_NATS_URL still wins, after the credentials", () => {
    expect(envOf(build({}, { natsUrl: "nats://a:4222,tls://b:4222, c:4222", natsCredentialsSecret: "s" })).OFFLOAD_NATS_URL).toBe(
      "nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@a:4222,tls://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@b:4222,nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@c:4222",
    );
    const mine = "nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@mine:4222";
    const d = build({ env: [{ name: "OFFLOAD_NATS_URL", value: mine }] }, { natsUrl: "nats://n:4222", natsCredentialsSecret: "s" });
    expect(envOf(d).OFFLOAD_NATS_URL).toBe(mine);
    const names = container(d).env.map((e) => e.name);
    expect(names.slice(0, 3)).toEqual(["OFFLOAD_NATS_USER", "OFFLOAD_NATS_PASSWORD", "OFFLOAD_NATS_URL"]);
    expect(withNatsCredentials("wss://u:p@x@h:443", "U")).toBe("wss://U@h:443");
  });

  it("env: without a NATS credentials Secret, the URL as given and no credential variables", () => {
    const env = envOf(build({}, { natsUrl: "nats://n:4222" }));
    expect(env.OFFLOAD_NATS_URL).toBe("nats://n:4222");
    expect(env).not.toHaveProperty("OFFLOAD_NATS_USER");
    expect(env).not.toHaveProperty("OFFLOAD_NATS_PASSWORD");
  });

  it("resources", () => {
    const resources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi", "nvidia.com/gpu": 1 } };
    expect(container(build({ resources })).resources).toEqual(resources);
    expect(container(build({}))).not.toHaveProperty("resources");
  });

  it("health port, probes and worker id", () => {
    const c = container(build({}));
    expect(envOf(build({})).OFFLOAD_WORKER_PORT).toBe("8081");
    expect(envOf(build({})).OFFLOAD_WORKER_ID).toEqual({ fieldRef: { fieldPath: "metadata.name" } });
    expect(c.ports).toEqual([{ name: "health", containerPort: WORKER_HEALTH_PORT, protocol: "TCP" }]);
    expect(WORKER_HEALTH_PORT).toBe(8081);
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "health" } });
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "health" } });
  });

  it("podTemplate.labels (ours take precedence) and annotations", () => {
    const d = build({ podTemplate: { labels: { team: "a", "app.kubernetes.io/instance": "hijack" }, annotations: { "prometheus.io/scrape": "true" } } });
    expect(d.spec.template.metadata.labels).toMatchObject({ team: "a", "app.kubernetes.io/instance": "pool" });
    expect(d.spec.template.metadata.annotations).toEqual({ "prometheus.io/scrape": "true" });
    expect(d.metadata.labels).not.toHaveProperty("team");
    expect(build({}).spec.template.metadata).not.toHaveProperty("annotations");
  });

  it("podTemplate.nodeSelector", () => {
    expect(build({ podTemplate: { nodeSelector: { pool: "batch" } } }).spec.template.spec.nodeSelector).toEqual({ pool: "batch" });
    expect(build({}).spec.template.spec).not.toHaveProperty("nodeSelector");
  });

  it("podTemplate.tolerations", () => {
    const tolerations = [{ key: "batch", operator: "Equal", value: "yes", effect: "NoSchedule" }, { operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 }];
    expect(build({ podTemplate: { tolerations } }).spec.template.spec.tolerations).toEqual(tolerations);
  });

  it("podTemplate.affinity (free-form)", () => {
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }] } } };
    expect(build({ podTemplate: { affinity } }).spec.template.spec.affinity).toEqual(affinity);
  });

  it("podTemplate.serviceAccountName", () => {
    expect(build({ podTemplate: { serviceAccountName: "workers" } }).spec.template.spec.serviceAccountName).toBe("workers");
    expect(build({}).spec.template.spec).not.toHaveProperty("serviceAccountName");
  });

  it("podTemplate.volumes and volumeMounts, after the controller's writable /tmp", () => {
    const volumes = [{ name: "scratch", emptyDir: { sizeLimit: "1Gi" } }, { name: "creds", secret: { secretName: "c" } }];
    const volumeMounts = [{ name: "scratch", mountPath: "/tmp/s" }, { name: "creds", mountPath: "/etc/creds", readOnly: true }];
    const d = build({ podTemplate: { volumes, volumeMounts } });
    expect(d.spec.template.spec.volumes).toEqual([TMP_VOLUME, ...volumes]);
    expect(container(d).volumeMounts).toEqual([TMP_MOUNT, ...volumeMounts]);
    expect(container(build({})).volumeMounts).toEqual([TMP_MOUNT]);
    expect(build({}).spec.template.spec.volumes).toEqual([TMP_VOLUME]);
  });

  it("a user's own volume at /tmp replaces the controller's", () => {
    const d = build({ podTemplate: { volumes: [{ name: "big-tmp", emptyDir: { sizeLimit: "20Gi" } }], volumeMounts: [{ name: "big-tmp", mountPath: "/tmp" }] } });
    expect(container(d).volumeMounts).toEqual([{ name: "big-tmp", mountPath: "/tmp" }]);
    expect(d.spec.template.spec.volumes).toEqual([{ name: "big-tmp", emptyDir: { sizeLimit: "20Gi" } }]);
  });

  it("the controller's volume names are refused in a TaskWorker", () => {
    for (const name of ["offload-tmp", "offload-token"]) {
      const r = TaskWorkerSchema.safeParse({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "p" }, spec: { image: "i", module: "m", podTemplate: { volumes: [{ name, emptyDir: {} }] } } });
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(/volume names offload-tmp and offload-token are the controller's/);
    }
  });
});

const TMP_VOLUME = { name: "offload-tmp", emptyDir: { sizeLimit: "256Mi" } };
const TMP_MOUNT = { name: "offload-tmp", mountPath: "/tmp" };
const POD_DEFAULT = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, fsGroupChangePolicy: "OnRootMismatch", seccompProfile: { type: "RuntimeDefault" } };
const CONTAINER_DEFAULT = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } };
const podSc = (d: Deployment): Record<string, unknown> => d.spec.template.spec.securityContext;
const containerSc = (d: Deployment): Record<string, unknown> => container(d).securityContext;

describe("worker pods safe by default, each setting overridable", () => {
  it("no overrides: the restricted Pod Security Standard, no Kubernetes API token", () => {
    const d = build({});
    expect(podSc(d)).toEqual(POD_DEFAULT);
    expect(containerSc(d)).toEqual(CONTAINER_DEFAULT);
    expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it("pod only: the fields given replace ours, the rest stay", () => {
    const d = build({ podTemplate: { securityContext: { runAsUser: 2000, seccompProfile: { type: "Localhost", localhostProfile: "profiles/worker.json" }, sysctls: [{ name: "net.core.somaxconn", value: "1024" }] } } });
    expect(podSc(d)).toEqual({
      ...POD_DEFAULT,
      runAsUser: 2000,
      seccompProfile: { type: "Localhost", localhostProfile: "profiles/worker.json" },
      // A field the schema does not list is passed on as given.
      sysctls: [{ name: "net.core.somaxconn", value: "1024" }],
    });
    expect(containerSc(d)).toEqual(CONTAINER_DEFAULT);
  });

  it("container only: capabilities merged field by field, a list replaced whole", () => {
    const d = build({ podTemplate: { containerSecurityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } } } });
    expect(containerSc(d)).toEqual({ ...CONTAINER_DEFAULT, capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] } });
    expect(podSc(d)).toEqual(POD_DEFAULT);
    const dropFew = build({ podTemplate: { containerSecurityContext: { capabilities: { drop: ["NET_RAW"] } } } });
    expect(at(containerSc(dropFew), "capabilities")).toEqual({ drop: ["NET_RAW"] });
  });

  it("both, and every default set to its opposite", () => {
    const d = build({
      podTemplate: {
        automountServiceAccountToken: true,
        securityContext: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, fsGroup: 0, fsGroupChangePolicy: "Always", seccompProfile: { type: "Unconfined" } },
        containerSecurityContext: { allowPrivilegeEscalation: true, readOnlyRootFilesystem: false, runAsNonRoot: false, capabilities: { drop: [] }, privileged: true },
      },
    });
    expect(podSc(d)).toEqual({ runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, fsGroup: 0, fsGroupChangePolicy: "Always", seccompProfile: { type: "Unconfined" } });
    expect(containerSc(d)).toEqual({ allowPrivilegeEscalation: true, readOnlyRootFilesystem: false, runAsNonRoot: false, capabilities: { drop: [] }, privileged: true });
    expect(d.spec.template.spec.automountServiceAccountToken).toBe(true);
  });

  it("overrides keep everything else the TaskWorker gave: env, resources, volumes, service account", () => {
    const resources = { requests: { cpu: "1" }, limits: { memory: "2Gi" } };
    const volumes = [{ name: "cache", emptyDir: {} }];
    const volumeMounts = [{ name: "cache", mountPath: "/cache" }];
    const spec = { env: [{ name: "A", value: "1" }], resources, podTemplate: { serviceAccountName: "workers", volumes, volumeMounts, securityContext: { runAsUser: 3000 }, containerSecurityContext: { readOnlyRootFilesystem: false } } };
    const d = build(spec, { auth: { mode: "kubernetes", audience: "offload" } });
    expect(envOf(d).A).toBe("1");
    expect(container(d).resources).toEqual(resources);
    expect(d.spec.template.spec.serviceAccountName).toBe("workers");
    expect(d.spec.template.spec.volumes).toEqual(expect.arrayContaining(volumes));
    expect(container(d).volumeMounts).toEqual(expect.arrayContaining(volumeMounts));
    expect(podSc(d).runAsUser).toBe(3000);
    expect(containerSc(d).readOnlyRootFilesystem).toBe(false);
    expect(containerSc(d).allowPrivilegeEscalation).toBe(false);
    // Neither the TaskWorker nor the defaults are changed by the merge.
    const parsed = tw(spec);
    desiredDeployment(parsed);
    expect(parsed.spec.podTemplate?.securityContext).toEqual({ runAsUser: 3000 });
    expect(podSc(build({}))).toEqual(POD_DEFAULT);
  });

  it("the CRD schema refuses a security context of the wrong shape", () => {
    const parse = (podTemplate: Record<string, unknown>) => TaskWorkerSchema.safeParse({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "p" }, spec: { image: "i", module: "m", podTemplate } });
    expect(parse({ securityContext: { runAsUser: 1000 } }).success).toBe(true);
    expect(parse({ securityContext: { runAsUser: -1 } }).success).toBe(false);
    expect(parse({ securityContext: { seccompProfile: { type: "Sometimes" } } }).success).toBe(false);
    expect(parse({ containerSecurityContext: { readOnlyRootFilesystem: "yes" } }).success).toBe(false);
    expect(parse({ containerSecurityContext: { capabilities: { add: "ALL" } } }).success).toBe(false);
  });
});

describe("the run API token of worker pods", () => {
  const kube: WorkerDefaults = { apiUrl: "http://api:8080", apiTokenSecret: "api-token", auth: { mode: "kubernetes", audience: "offload" } };

  it("auth kubernetes: a projected ServiceAccount token for the audience at OFFLOAD_TOKEN_FILE, no shared token", () => {
    const d = build({}, kube);
    const token = d.spec.template.spec.volumes.find((v) => v.name === "offload-token");
    expect(token).toEqual({
      name: "offload-token",
      projected: { sources: [{ serviceAccountToken: { audience: "offload", expirationSeconds: 3600, path: "token" } }] },
    });
    expect(container(d).volumeMounts).toContainEqual({ name: "offload-token", mountPath: "/var/run/secrets/offload", readOnly: true });
    expect(envOf(d).OFFLOAD_TOKEN_FILE).toBe("/var/run/secrets/offload/token");
    expect(envOf(d)).not.toHaveProperty("OFFLOAD_API_TOKEN");
    // The Kubernetes API token stays unmounted: the projected one is all the worker needs.
    expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
    const other = build({}, { ...kube, auth: { mode: "kubernetes", audience: "tasks.example.com" } });
    expect(at(other.spec.template.spec.volumes, 1, "projected", "sources", 0, "serviceAccountToken", "audience")).toBe("tasks.example.com");
  });

  it("auth token (the default) and none: the shared token from the Secret, no projected volume", () => {
    for (const auth of [undefined, { mode: "token", audience: "offload" }, { mode: "none", audience: "offload" }] as const) {
      const d = build({}, { ...kube, auth });
      expect(envOf(d).OFFLOAD_API_TOKEN).toEqual({ secretKeyRef: { name: "api-token", key: "token" } });
      expect(envOf(d)).not.toHaveProperty("OFFLOAD_TOKEN_FILE");
      expect(d.spec.template.spec.volumes.map((v) => v.name)).toEqual(["offload-tmp"]);
    }
  });
});

function at(value: unknown, ...path: (string | number)[]): unknown {
  let v: unknown = value;
  for (const k of path) v = v !== null && typeof v === "object" ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}
