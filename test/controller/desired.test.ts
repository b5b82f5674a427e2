import { describe, expect, it } from "vitest";
import { TaskWorkerSchema, type TaskWorker } from "../../operator/src/crds/schemas.js";
import { desiredDeployment, TERMINATION_MARGIN_SECONDS, WORKER_HEALTH_PORT, withNatsCredentials } from "../../operator/src/controller/desired.js";

type Container = { name: string; image: string; env: { name: string; value?: string; valueFrom?: unknown }[]; resources?: unknown; volumeMounts?: unknown; ports: unknown; livenessProbe: unknown; readinessProbe: unknown };
type PodSpec = { containers: Container[]; terminationGracePeriodSeconds: number; serviceAccountName?: string; nodeSelector?: unknown; tolerations?: unknown; affinity?: unknown; volumes?: unknown };
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
const build = (spec: Record<string, unknown>, defaults = {}): Deployment => desiredDeployment(tw(spec), defaults) as unknown as Deployment;
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

  it("podTemplate.volumes and volumeMounts", () => {
    const volumes = [{ name: "scratch", emptyDir: { sizeLimit: "1Gi" } }, { name: "creds", secret: { secretName: "c" } }];
    const volumeMounts = [{ name: "scratch", mountPath: "/tmp/s" }, { name: "creds", mountPath: "/etc/creds", readOnly: true }];
    const d = build({ podTemplate: { volumes, volumeMounts } });
    expect(d.spec.template.spec.volumes).toEqual(volumes);
    expect(container(d).volumeMounts).toEqual(volumeMounts);
    expect(container(build({}))).not.toHaveProperty("volumeMounts");
  });
});
