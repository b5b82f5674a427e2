/**
 * The Helm chart, rendered by the real helm (3.18, from .tools/bin): it lints,
 * renders for the main layouts, grants exactly the controller's permissions,
 * wires NATS, PostgreSQL and the API token into the processes consistently,
 * keeps every pod locked down, and rejects wrong values with a clear message.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { API_NODE_FLAGS, WORKER_NODE_FLAGS } from "../support/stack.js";
import { withNatsCredentials } from "../../operator/src/controller/desired.js";
import type { PolicyRule } from "../../operator/src/controller/rbac.js";
import {
  CHART, NAMESPACE, RELEASE, ROOT,
  allContainers, at, container, controllerRules, ensureHelm, env, helm, podSpec, resolveEnv, secretValue, refusal, template,
  type K8sObject, type Rendered,
} from "./helm.js";

const FULL = `${RELEASE}-offload`;
const CONTROLLER = `${FULL}-controller`;
const API = `${FULL}-api`;
const NATS = `${FULL}-nats`;
const POSTGRES = `${FULL}-postgresql`;
const TOKEN_SECRET = `${FULL}-api-token`;
const NATS_AUTH = `${NATS}-auth`;
const CREDS_URL = (hosts: string): string => hosts.split(",").map((h) => h.replace("://", "://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@")).join(",");
/** The NATS URL(s) the controller gives worker pods, from the (credential-free) URL(s) it gets and a credentials Secret. */
const WORKER_NATS_URL = (controllerUrl: string): string => withNatsCredentials(controllerUrl, "$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)");
const CHART_APP_VERSION = "0.1.0";

/** apiVersion/kind pairs a Kubernetes 1.25+ API server serves (and that this chart may use). */
const SERVED = new Set([
  "v1/Service", "v1/ConfigMap", "v1/Secret", "v1/ServiceAccount",
  "apps/v1/Deployment", "apps/v1/StatefulSet",
  "rbac.authorization.k8s.io/v1/ClusterRole", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
  "rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding",
  "autoscaling/v2/HorizontalPodAutoscaler", "policy/v1/PodDisruptionBudget", "networking.k8s.io/v1/NetworkPolicy",
  "apiextensions.k8s.io/v1/CustomResourceDefinition",
]);

const EXTERNAL = {
  "nats.mode": "external",
  "nats.url": "nats://nats-a.messaging.svc:4222,nats://nats-b.messaging.svc:4222",
  "postgresql.mode": "external",
  "postgresql.existingSecret": "offload-db",
  "postgresql.secretKey": "url",
};

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet"]);
const workloads = (r: Rendered): K8sObject[] => r.objects.filter((o) => WORKLOAD_KINDS.has(o.kind));

/** A rule with its lists sorted, so that order within a rule does not matter. */
function normalize(rules: readonly PolicyRule[]): string[] {
  return rules
    .map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.isArray(v) ? [...(v as string[])].sort() : v]).sort(([a], [b]) => String(a).localeCompare(String(b))))))
    .sort();
}

/** The checks that hold for every rendering of the chart. */
function checkInvariants(r: Rendered, rules: readonly PolicyRule[]): void {
  for (const o of r.objects) {
    expect(SERVED, `${o.apiVersion} ${o.kind} ${o.metadata.name}`).toContain(`${o.apiVersion}/${o.kind}`);
    if (o.kind !== "CustomResourceDefinition") {
      expect(o.metadata.labels?.["app.kubernetes.io/instance"], `${o.kind}/${o.metadata.name} labels`).toBe(RELEASE);
      expect(o.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("Helm");
    }
  }

  // RBAC: the controller's ClusterRole is exactly CONTROLLER_RULES, bound to the controller's ServiceAccount; every
  // other ClusterRole grants only the run API's virtual resource runs.offload.dev and TaskSchedules, which start runs
  // (auth.test.ts checks them).
  const roles = r.ofKind("ClusterRole");
  expect(normalize(at(r.get("ClusterRole", CONTROLLER), "rules") as PolicyRule[])).toEqual(normalize(rules));
  for (const role of roles.filter((x) => x.metadata.name !== CONTROLLER)) {
    for (const rule of at(role, "rules") as PolicyRule[]) {
      expect(rule.apiGroups, role.metadata.name).toEqual(["offload.dev"]);
      expect([["runs"], ["taskschedules"]], role.metadata.name).toContainEqual(rule.resources);
    }
  }
  expect(r.ofKind("Role")).toEqual([]);
  const binding = r.get("ClusterRoleBinding", CONTROLLER);
  expect(at(binding, "roleRef")).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CONTROLLER });
  const controller = r.get("Deployment", CONTROLLER);
  const sa = podSpec(controller).serviceAccountName;
  expect(at(binding, "subjects")).toEqual([{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }]);

  for (const w of workloads(r)) {
    const id = `${w.kind}/${w.metadata.name}`;
    const spec = podSpec(w);
    // The Deployment/StatefulSet selector picks its own pods.
    const selector = at(w, "spec", "selector", "matchLabels") as Record<string, string>;
    const podLabels = at(w, "spec", "template", "metadata", "labels") as Record<string, string>;
    expect(podLabels, id).toMatchObject(selector);
    // Pod-level: non-root, RuntimeDefault seccomp.
    expect(at(spec, "securityContext", "runAsNonRoot"), id).toBe(true);
    expect(at(spec, "securityContext", "seccompProfile", "type"), id).toBe("RuntimeDefault");
    const mounts = new Set<string>();
    for (const c of allContainers(w)) {
      const cid = `${id} container ${c.name}`;
      const sc = c.securityContext ?? {};
      expect(sc.allowPrivilegeEscalation, cid).toBe(false);
      expect(sc.readOnlyRootFilesystem, cid).toBe(true);
      expect(sc.runAsNonRoot ?? at(spec, "securityContext", "runAsNonRoot"), cid).toBe(true);
      expect(at(sc, "capabilities", "drop"), cid).toContain("ALL");
      expect(at(sc, "capabilities", "add") ?? [], cid).toEqual([]);
      expect(at(sc, "seccompProfile", "type") ?? at(spec, "securityContext", "seccompProfile", "type"), cid).toBe("RuntimeDefault");
      expect(c.resources?.requests?.cpu, `${cid} cpu request`).toBeDefined();
      expect(c.resources?.requests?.memory, `${cid} memory request`).toBeDefined();
      for (const m of (at(c, "volumeMounts") as { mountPath: string }[] | undefined) ?? []) mounts.add(m.mountPath);
      // Every image is pinned to a tag.
      expect(c.image, cid).toMatch(/^\S+:\w[\w.-]*$/);
    }
    // A read-only root needs somewhere to write: /tmp at least.
    expect(mounts, `${id} mounts`).toContain("/tmp");
    // Every volume mounted is declared (in the pod or a claim template).
    const declared = new Set([
      ...((spec.volumes as { name: string }[] | undefined) ?? []).map((v) => v.name),
      ...((at(w, "spec", "volumeClaimTemplates") as { metadata: { name: string } }[] | undefined) ?? []).map((v) => v.metadata.name),
    ]);
    for (const c of allContainers(w)) for (const m of (at(c, "volumeMounts") as { name: string }[] | undefined) ?? []) expect(declared, `${id} volume ${m.name}`).toContain(m.name);
    // Every Secret a container reads is rendered here, or named in values as an existing one.
    for (const c of allContainers(w)) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = r.find("Secret", ref.name);
        if (secret) expect(secretValue(secret, ref.key), `${id} ${e.name} -> ${ref.name}/${ref.key}`).toBeTruthy();
      }
    }
  }

  // Every Service selects the pods of some workload, on a port that workload names.
  for (const svc of r.ofKind("Service")) {
    const selector = at(svc, "spec", "selector") as Record<string, string>;
    const backing = workloads(r).filter((w) => {
      const labels = at(w, "spec", "template", "metadata", "labels") as Record<string, string>;
      return Object.entries(selector).every(([k, v]) => labels[k] === v);
    });
    expect(backing.length, `Service ${svc.metadata.name} selects no workload`).toBeGreaterThan(0);
    const portNames = new Set(backing.flatMap((w) => allContainers(w).flatMap((c) => ((at(c, "ports") as { name: string }[] | undefined) ?? []).map((p) => p.name))));
    for (const p of at(svc, "spec", "ports") as { targetPort: string | number }[]) {
      if (typeof p.targetPort === "string") expect(portNames, `Service ${svc.metadata.name} targetPort`).toContain(p.targetPort);
    }
  }

  // Every $(NAME) in an env value names a variable defined before it (else Kubernetes leaves it as is).
  for (const w of workloads(r)) {
    for (const c of allContainers(w)) {
      const seen = new Set<string>();
      for (const e of c.env ?? []) {
        for (const m of (e.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) expect(seen, `${w.kind}/${w.metadata.name} ${c.name} ${e.name} refers to $(${m[1]})`).toContain(m[1]);
        seen.add(e.name);
      }
    }
  }

  // The controller and the run API agree on the auth mode; with `token` they share the token Secret, otherwise
  // no process holds a shared token.
  const api = r.get("Deployment", API);
  const mode = env(container(api, "api"), "OFFLOAD_AUTH").value;
  expect(env(container(controller, "controller"), "OFFLOAD_AUTH").value).toBe(mode);
  if (mode === "token") {
    const tokenRef = env(container(controller, "controller"), "OFFLOAD_API_TOKEN").valueFrom?.secretKeyRef;
    expect(tokenRef?.key).toBe("token");
    expect(env(container(api, "api"), "OFFLOAD_API_TOKEN").valueFrom?.secretKeyRef).toEqual(tokenRef);
    expect(env(container(controller, "controller"), "OFFLOAD_API_TOKEN_SECRET").value).toBe(tokenRef?.name);
  } else {
    for (const w of workloads(r)) for (const c of allContainers(w)) expect((c.env ?? []).map((e) => e.name), `${w.metadata.name} ${c.name}`).not.toContain("OFFLOAD_API_TOKEN");
    expect(r.find("Secret", TOKEN_SECRET)).toBeUndefined();
  }
}

/** The image of the first container of a workload. */
const imageOf = (w: K8sObject): string => allContainers(w)[0]?.image ?? "";

describe("the Helm chart", () => {
  let rules: readonly PolicyRule[];

  beforeAll(async () => {
    ensureHelm();
    rules = await controllerRules();
  });

  it("passes helm lint, strict, with the default and the other main values", () => {
    for (const set of [[], ["--set", "nats.replicas=3"], ["--set-json", `nats=${JSON.stringify({ mode: "external", url: "nats://n:4222" })}`, "--set", "postgresql.mode=external,postgresql.existingSecret=db"], ["--set", "api.autoscaling.enabled=true,api.podDisruptionBudget.enabled=true"], ["--set", "nats.auth.enabled=false,nats.replicas=3"], ["--set", "nats.auth.existingSecret=nats-creds"]]) {
      const r = helm(["lint", "--strict", CHART, "--namespace", NAMESPACE, ...set]);
      expect(r.status, `${set.join(" ")}\n${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("0 chart(s) failed");
    }
  });

  it("renders the defaults: controller, run API, bundled single-node NATS and PostgreSQL, a generated token", () => {
    const r = template();
    checkInvariants(r, rules);

    const controller = r.get("Deployment", CONTROLLER);
    const c = container(controller, "controller");
    expect(c.command).toEqual(["node", "operator/dist/bin/offload-controller.js"]);
    expect(c.image).toBe(`ghcr.io/offload-dev/offload-control-plane:${CHART_APP_VERSION}`);
    expect(at(controller, "spec", "replicas")).toBe(1);
    const natsUrl = `nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@${NATS}.${NAMESPACE}.svc:4222`;
    // The controller only passes the URL on to worker pods: it gets it without credentials.
    expect(env(c, "OFFLOAD_NATS_URL").value).toBe(`nats://${NATS}.${NAMESPACE}.svc:4222`);
    expect(env(c, "OFFLOAD_NATS_CREDENTIALS_SECRET").value).toBe(NATS_AUTH);
    expect(env(c, "OFFLOAD_API_URL").value).toBe(`http://${API}.${NAMESPACE}.svc:8080`);
    expect(env(c, "POD_NAME").valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
    expect(env(c, "OFFLOAD_LEASE_NAMESPACE").value).toBe(NAMESPACE);
    expect(env(c, "OFFLOAD_CONTROLLER_PORT").value).toBe("8082");
    expect(env(c, "OFFLOAD_WATCH_NAMESPACE").value).toBe("");
    expect(env(c, "OFFLOAD_LOG_LEVEL").value).toBe("info");
    // auth.mode kubernetes by default: the controller presents its ServiceAccount's projected token (auth.test.ts).
    expect(env(c, "OFFLOAD_AUTH").value).toBe("kubernetes");
    expect(env(c, "OFFLOAD_TOKEN_FILE").value).toBe("/var/run/secrets/offload/token");
    expect(at(c, "livenessProbe", "httpGet")).toEqual({ path: "/healthz", port: "health" });
    expect(at(c, "readinessProbe", "httpGet")).toEqual({ path: "/readyz", port: "health" });
    expect(at(c, "ports", 0, "containerPort")).toBe(8082);

    // The API URL the controller gets is the API Service's.
    const apiSvc = r.get("Service", API);
    expect(at(apiSvc, "spec", "ports", 0, "port")).toBe(8080);
    const api = r.get("Deployment", API);
    const a = container(api, "api");
    // The same Node flags as the image's CMD, and as the tests and the bench start the run API with.
    expect(a.command).toEqual(["node", ...API_NODE_FLAGS, "operator/dist/bin/offload-api.js"]);
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain(`CMD ${JSON.stringify(["node", ...API_NODE_FLAGS, "operator/dist/bin/offload-api.js"]).replaceAll(",", ", ")}`);
    expect(dockerfile).toContain(`ENTRYPOINT ${JSON.stringify(["node", ...WORKER_NODE_FLAGS, "/app/worker/dist/bin/offload-worker.js"]).replaceAll(",", ", ")}`);
    expect(at(api, "spec", "replicas")).toBe(2);
    expect(env(a, "OFFLOAD_API_PORT").value).toBe("8080");
    expect(at(a, "ports", 0, "containerPort")).toBe(8080);
    expect(env(a, "OFFLOAD_NATS_URL").value).toBe(natsUrl);
    expect(env(a, "OFFLOAD_RUN_RETENTION_DAYS").value).toBe("30");
    expect(a.env?.map((e) => e.name)).not.toContain("OFFLOAD_FAILED_RUN_RETENTION_DAYS");
    expect(at(a, "readinessProbe", "httpGet", "path")).toBe("/readyz");
    expect(at(a, "livenessProbe", "httpGet", "path")).toBe("/healthz");

    // NATS: the client Service the URL names, one JetStream node on a volume, no cluster block.
    expect(at(r.get("Service", NATS), "spec", "ports", 0, "port")).toBe(4222);
    const nats = r.get("StatefulSet", NATS);
    expect(at(nats, "spec", "replicas")).toBe(1);
    expect(imageOf(nats)).toBe("docker.io/library/nats:2.10-alpine");
    expect(at(nats, "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage")).toBe("10Gi");
    const conf = String(at(r.get("ConfigMap", NATS), "data", "nats.conf"));
    expect(conf).toMatch(/jetstream\s*{[^}]*store_dir:\s*\/data/);
    expect(conf).not.toContain("cluster {");
    const natsMounts = at(container(nats, "nats"), "volumeMounts") as { name: string; mountPath: string }[];
    expect(natsMounts).toContainEqual({ name: "data", mountPath: "/data" });

    // PostgreSQL: the database URL points at the bundled server with the generated password.
    const dbRef = env(a, "OFFLOAD_DATABASE_URL").valueFrom?.secretKeyRef;
    expect(dbRef).toEqual({ name: POSTGRES, key: "database-url" });
    const pgSecret = r.get("Secret", POSTGRES);
    const password = secretValue(pgSecret, "password") ?? "";
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(secretValue(pgSecret, "database-url")).toBe(`postgres://offload:${password}@${POSTGRES}.${NAMESPACE}.svc:5432/offload`);
    expect(at(r.get("Service", POSTGRES), "spec", "ports", 0, "port")).toBe(5432);
    const pg = r.get("StatefulSet", POSTGRES);
    const p = container(pg, "postgresql");
    expect(p.image).toBe("docker.io/library/postgres:16-alpine");
    expect(env(p, "POSTGRES_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: POSTGRES, key: "password" });
    expect(env(p, "POSTGRES_USER").value).toBe("offload");
    expect(env(p, "POSTGRES_DB").value).toBe("offload");
    const pgMounts = (at(p, "volumeMounts") as { mountPath: string }[]).map((m) => m.mountPath);
    expect(pgMounts).toEqual(expect.arrayContaining(["/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"]));
    expect(env(p, "PGDATA").value?.startsWith("/var/lib/postgresql/data/")).toBe(true);

    // No HPA or PDB unless asked for.
    expect(r.ofKind("HorizontalPodAutoscaler")).toEqual([]);
    expect(r.ofKind("PodDisruptionBudget")).toEqual([]);
  });

  it("keeps a given PostgreSQL password and escapes it in the database URL", () => {
    const password = "p@ss w+rd/:%";
    const r = template({ "postgresql.auth": { username: "tasks", database: "runs", password } });
    const secret = r.get("Secret", POSTGRES);
    expect(secretValue(secret, "password")).toBe(password);
    const url = new URL(secretValue(secret, "database-url") ?? "");
    expect(decodeURIComponent(url.password)).toBe(password);
    expect(url.username).toBe("tasks");
    expect(url.pathname).toBe("/runs");
    expect(`${url.protocol}//${url.host}`).toBe(`postgres://${POSTGRES}.${NAMESPACE}.svc:5432`);
  });

  it("renders a three-node NATS cluster with routes to every node", () => {
    const r = template({ "nats.replicas": 3 });
    checkInvariants(r, rules);
    const nats = r.get("StatefulSet", NATS);
    expect(at(nats, "spec", "replicas")).toBe(3);
    expect(at(nats, "spec", "podManagementPolicy")).toBe("Parallel");
    const headless = r.get("Service", `${NATS}-headless`);
    expect(at(headless, "spec", "clusterIP")).toBe("None");
    expect(at(nats, "spec", "serviceName")).toBe(`${NATS}-headless`);
    const conf = String(at(r.get("ConfigMap", NATS), "data", "nats.conf"));
    expect(conf).toMatch(/cluster\s*{/);
    expect(conf).toContain("server_name: $SERVER_NAME");
    const routes = [...conf.matchAll(/nats:\/\/(\S+):6222/g)].map((m) => m[1]);
    expect(routes).toEqual([0, 1, 2].map((i) => `${NATS}-${i}.${NATS}-headless.${NAMESPACE}.svc.cluster.local`));
    expect(env(container(nats, "nats"), "SERVER_NAME").valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
    // Clients still use the one client Service.
    expect(env(container(r.get("Deployment", API), "api"), "OFFLOAD_NATS_URL").value).toBe(`nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@${NATS}.${NAMESPACE}.svc:4222`);
  });

  it("renders external NATS and PostgreSQL: no bundled objects, the processes get the given URL and Secret", () => {
    const r = template(EXTERNAL);
    checkInvariants(r, rules);
    expect(r.ofKind("StatefulSet")).toEqual([]);
    expect(r.ofKind("ConfigMap")).toEqual([]);
    expect(r.find("Secret", POSTGRES)).toBeUndefined();
    expect(r.ofKind("Service").map((s) => s.metadata.name)).toEqual([API]);
    for (const [name, c] of [[CONTROLLER, "controller"], [API, "api"]] as const) {
      expect(env(container(r.get("Deployment", name), c), "OFFLOAD_NATS_URL").value).toBe(EXTERNAL["nats.url"]);
    }
    expect(env(container(r.get("Deployment", API), "api"), "OFFLOAD_DATABASE_URL").valueFrom?.secretKeyRef).toEqual({ name: "offload-db", key: "url" });
  });

  it("renders the run API with a HorizontalPodAutoscaler and a PodDisruptionBudget", () => {
    const r = template({
      "api.autoscaling": { enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60, targetMemoryUtilizationPercentage: 80 },
      "api.podDisruptionBudget": { enabled: true, minAvailable: 2, maxUnavailable: "" },
    });
    checkInvariants(r, rules);
    const api = r.get("Deployment", API);
    // The HPA owns the replica count.
    expect(at(api, "spec", "replicas")).toBeUndefined();
    const hpa = r.get("HorizontalPodAutoscaler", API);
    expect(at(hpa, "spec", "scaleTargetRef")).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: API });
    expect(at(hpa, "spec", "minReplicas")).toBe(3);
    expect(at(hpa, "spec", "maxReplicas")).toBe(12);
    expect(at(hpa, "spec", "metrics")).toEqual([
      { type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 60 } } },
      { type: "Resource", resource: { name: "memory", target: { type: "Utilization", averageUtilization: 80 } } },
    ]);
    const pdb = r.get("PodDisruptionBudget", API);
    expect(at(pdb, "spec", "minAvailable")).toBe(2);
    expect(at(pdb, "spec", "maxUnavailable")).toBeUndefined();
    expect(at(api, "spec", "template", "metadata", "labels")).toMatchObject(at(pdb, "spec", "selector", "matchLabels") as object);

    const byMax = template({ "api.podDisruptionBudget": { enabled: true, maxUnavailable: "25%" } });
    expect(at(byMax.get("PodDisruptionBudget", API), "spec")).toMatchObject({ maxUnavailable: "25%" });
    expect(at(byMax.get("PodDisruptionBudget", API), "spec", "minAvailable")).toBeUndefined();
  });

  it("starts the run API with the heap cap it is given, for a larger memory limit", () => {
    const a = container(template({ "api.maxOldSpaceMiB": 768, "api.resources": { requests: { cpu: "100m", memory: "512Mi" }, limits: { memory: "1Gi" } } }).get("Deployment", API), "api");
    expect(a.command).toEqual(["node", "--max-semi-space-size=8", "--max-old-space-size=768", "operator/dist/bin/offload-api.js"]);
  });

  it("passes the run retention to the API, a FAILED one only when given (0 included: keep forever)", () => {
    const a = container(template({ "api.runRetentionDays": 0.5, "api.failedRunRetentionDays": 0 }).get("Deployment", API), "api");
    expect(env(a, "OFFLOAD_RUN_RETENTION_DAYS").value).toBe("0.5");
    expect(env(a, "OFFLOAD_FAILED_RUN_RETENTION_DAYS").value).toBe("0");
  });

  it("uses a custom registry, repository and tag for every image, and the pull secrets on every pod", () => {
    const r = template({
      image: { registry: "registry.example.com:5000", repository: "platform/offload", tag: "1.2.3", pullPolicy: "Always" },
      imagePullSecrets: [{ name: "regcred" }],
      "nats.image": { registry: "mirror.example.com", repository: "nats", tag: "2.10.22-alpine" },
      "postgresql.image": { registry: "", repository: "postgres", tag: "16.4-alpine" },
    });
    checkInvariants(r, rules);
    for (const [name, c] of [[CONTROLLER, "controller"], [API, "api"]] as const) {
      const ctr = container(r.get("Deployment", name), c);
      expect(ctr.image).toBe("registry.example.com:5000/platform/offload:1.2.3");
      expect(at(ctr, "imagePullPolicy")).toBe("Always");
    }
    expect(imageOf(r.get("StatefulSet", NATS))).toBe("mirror.example.com/nats:2.10.22-alpine");
    expect(imageOf(r.get("StatefulSet", POSTGRES))).toBe("postgres:16.4-alpine");
    for (const w of workloads(r)) expect(podSpec(w).imagePullSecrets, `${w.kind}/${w.metadata.name}`).toEqual([{ name: "regcred" }]);
  });

  describe("the API token Secret (auth.mode token)", () => {
    const TOKEN_MODE = { "auth.mode": "token" };
    it("is generated when not given: 32 random characters under `token`", () => {
      const a = secretValue(template(TOKEN_MODE).get("Secret", TOKEN_SECRET), "token");
      const b = secretValue(template(TOKEN_MODE).get("Secret", TOKEN_SECRET), "token");
      expect(a).toMatch(/^[A-Za-z0-9]{32}$/);
      // With no cluster to look the old one up in, each render draws a new one.
      expect(b).not.toBe(a);
    });

    it("is looked up before generating, so an upgrade keeps the token", () => {
      const text = readFileSync(join(CHART, "templates", "secret-api-token.yaml"), "utf8");
      expect(text).toMatch(/lookup "v1" "Secret" \.Release\.Namespace \$name/);
    });

    it("takes the token from values when given", () => {
      const r = template({ ...TOKEN_MODE, "apiToken.value": "s3cret-token-from-values" });
      expect(secretValue(r.get("Secret", TOKEN_SECRET), "token")).toBe("s3cret-token-from-values");
      checkInvariants(r, rules);
    });

    it("honors an existing Secret: none is made and every reference names it", () => {
      const r = template({ ...TOKEN_MODE, "apiToken.existingSecret": "my-offload-token" });
      checkInvariants(r, rules);
      expect(r.find("Secret", TOKEN_SECRET)).toBeUndefined();
      const c = container(r.get("Deployment", CONTROLLER), "controller");
      expect(env(c, "OFFLOAD_API_TOKEN").valueFrom?.secretKeyRef).toEqual({ name: "my-offload-token", key: "token" });
      expect(env(c, "OFFLOAD_API_TOKEN_SECRET").value).toBe("my-offload-token");
      expect(env(container(r.get("Deployment", API), "api"), "OFFLOAD_API_TOKEN").valueFrom?.secretKeyRef).toEqual({ name: "my-offload-token", key: "token" });
    });
  });

  describe("NATS authentication", () => {
    const NATS_BIN = process.env.NATS_SERVER_BIN ?? "nats-server";
    const natsEnvNames = ["OFFLOAD_NATS_USER", "OFFLOAD_NATS_PASSWORD", "OFFLOAD_NATS_URL"];

    /** The rendered nats.conf checked by `nats-server -t`, with the env the kubelet would give pod `pod`. */
    function natsConfigTest(r: Rendered, envOverride?: Record<string, string>): { status: number | null; output: string } {
      const nats = r.get("StatefulSet", NATS);
      const podEnv = envOverride ?? resolveEnv(r, container(nats, "nats"), { "metadata.name": `${NATS}-0` });
      const dir = mkdtempSync(join(tmpdir(), "offload-nats-conf-"));
      try {
        const file = join(dir, "nats.conf");
        writeFileSync(file, String(at(r.get("ConfigMap", NATS), "data", "nats.conf")));
        const t = spawnSync(NATS_BIN, ["-c", file, "-t"], { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...podEnv } });
        if (t.error) throw t.error;
        return { status: t.status, output: `${t.stdout}${t.stderr}` };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it("is on by default: a generated password in a Secret, nats.conf requires it, the API and the controller present it", () => {
      const r = template();
      checkInvariants(r, rules);
      const secret = r.get("Secret", NATS_AUTH);
      expect(secretValue(secret, "user")).toBe("offload");
      const password = secretValue(secret, "password") ?? "";
      expect(password).toMatch(/^[A-Za-z0-9]{32}$/);

      const conf = String(at(r.get("ConfigMap", NATS), "data", "nats.conf"));
      expect(conf).toMatch(/\nauthorization\s*{\s*user:\s*\$NATS_USER\s+password:\s*\$NATS_PASSWORD\s*}/);
      expect(conf).not.toContain(password);
      // The NATS container: the raw credentials from the Secret, then the quoted forms nats.conf reads.
      const n = container(r.get("StatefulSet", NATS), "nats");
      expect(env(n, "NATS_AUTH_USER").valueFrom?.secretKeyRef).toEqual({ name: NATS_AUTH, key: "user" });
      expect(env(n, "NATS_AUTH_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: NATS_AUTH, key: "password" });
      expect(env(n, "NATS_USER").value).toBe('"$(NATS_AUTH_USER)"');
      expect(env(n, "NATS_PASSWORD").value).toBe('"$(NATS_AUTH_PASSWORD)"');
      expect(n.env?.map((e) => e.name)).not.toContain("NATS_ROUTES");
      expect(at(r.get("StatefulSet", NATS), "spec", "template", "metadata", "annotations", "checksum/nats-auth")).toMatch(/^[0-9a-f]{16}$/);

      const url = `nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@${NATS}.${NAMESPACE}.svc:4222`;
      // The run API presents them.
      const api = r.get("Deployment", API);
      const a = container(api, "api");
      const names = (a.env ?? []).map((e) => e.name);
      expect(env(a, "OFFLOAD_NATS_USER").valueFrom?.secretKeyRef).toEqual({ name: NATS_AUTH, key: "user" });
      expect(env(a, "OFFLOAD_NATS_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: NATS_AUTH, key: "password" });
      expect(env(a, "OFFLOAD_NATS_URL").value).toBe(url);
      // The URL after the two it refers to: Kubernetes only expands variables defined earlier.
      expect(natsEnvNames.map((x) => names.indexOf(x))).toEqual([...natsEnvNames.map((x) => names.indexOf(x))].sort((a, b) => a - b));
      expect(resolveEnv(r, a, { "metadata.name": "p" }).OFFLOAD_NATS_URL).toBe(`nats://offload:${password}@${NATS}.${NAMESPACE}.svc:4222`);
      expect(at(api, "spec", "template", "metadata", "annotations", "checksum/nats-auth")).toMatch(/^[0-9a-f]{16}$/);
      // The controller never connects to NATS: the URL without credentials and no password, only the Secret's name,
      // from which the worker pods it makes get the same URL as the run API.
      const ctl = r.get("Deployment", CONTROLLER);
      const c = container(ctl, "controller");
      const ctlNames = (c.env ?? []).map((e) => e.name);
      expect(ctlNames).not.toContain("OFFLOAD_NATS_USER");
      expect(ctlNames).not.toContain("OFFLOAD_NATS_PASSWORD");
      expect(env(c, "OFFLOAD_NATS_URL").value).toBe(`nats://${NATS}.${NAMESPACE}.svc:4222`);
      expect(WORKER_NATS_URL(env(c, "OFFLOAD_NATS_URL").value ?? "")).toBe(url);
      expect(JSON.stringify(c.env)).not.toMatch(/password/i);
      expect(at(ctl, "spec", "template", "metadata", "annotations", "checksum/nats-auth")).toMatch(/^[0-9a-f]{16}$/);
      // The controller names a rendered Secret with both keys for the worker pods.
      const credsSecret = env(c, "OFFLOAD_NATS_CREDENTIALS_SECRET").value ?? "";
      expect(credsSecret).toBe(NATS_AUTH);
      expect(secretValue(r.get("Secret", credsSecret), "user")).toBeTruthy();
      expect(secretValue(r.get("Secret", credsSecret), "password")).toBeTruthy();
      // The password is nowhere in plain sight but the Secret.
      expect(r.objects.filter((o) => o.kind !== "Secret" && JSON.stringify(o).includes(password))).toEqual([]);
    });

    it("the password is looked up before generating, so an upgrade keeps it", () => {
      const text = readFileSync(join(CHART, "templates", "secret-nats-auth.yaml"), "utf8");
      expect(text).toMatch(/lookup "v1" "Secret" \.Release\.Namespace \$name/);
      expect(text).toContain("randAlphaNum 32");
    });

    it("the single-node nats.conf passes nats-server -t with the pod's env, and fails without the password", () => {
      const r = template();
      const ok = natsConfigTest(r);
      expect(ok.status, ok.output).toBe(0);
      expect(ok.output).toMatch(/is valid/);
      const missing = natsConfigTest(r, { SERVER_NAME: `${NATS}-0`, NATS_USER: '"offload"' });
      expect(missing.status, missing.output).not.toBe(0);
      expect(missing.output).toMatch(/NATS_PASSWORD/);
    });

    it("the three-node cluster: routes carry the credentials and its nats.conf passes nats-server -t", () => {
      const r = template({ "nats.replicas": 3, "nats.auth.password": "1e10-looks.like_a~number" });
      checkInvariants(r, rules);
      const conf = String(at(r.get("ConfigMap", NATS), "data", "nats.conf"));
      expect(conf).toMatch(/cluster\s*{[^}]*authorization\s*{\s*user:\s*\$NATS_USER\s+password:\s*\$NATS_PASSWORD\s*}\s*routes:\s*\$NATS_ROUTES/);
      const n = container(r.get("StatefulSet", NATS), "nats");
      const hosts = [0, 1, 2].map((i) => `${NATS}-${i}.${NATS}-headless.${NAMESPACE}.svc.cluster.local:6222`);
      expect(env(n, "NATS_ROUTES").value).toBe(`[${hosts.map((h) => `"nats://$(NATS_AUTH_USER):$(NATS_AUTH_PASSWORD)@${h}"`).join(", ")}]`);
      const podEnv = resolveEnv(r, n, { "metadata.name": `${NATS}-1` });
      expect(podEnv.NATS_ROUTES).toContain(`"nats://offload:1e10-looks.like_a~number@${hosts[0]}"`);
      // Quoted, a password nats-server would otherwise read as a number is still a string.
      expect(podEnv.NATS_PASSWORD).toBe('"1e10-looks.like_a~number"');
      const t = natsConfigTest(r);
      expect(t.status, t.output).toBe(0);
      expect(t.output).toMatch(/is valid/);
    });

    it("takes the user and password from values", () => {
      const r = template({ "nats.auth.user": "tasks", "nats.auth.password": "Given-pass.word_0123" });
      checkInvariants(r, rules);
      expect(secretValue(r.get("Secret", NATS_AUTH), "user")).toBe("tasks");
      expect(secretValue(r.get("Secret", NATS_AUTH), "password")).toBe("Given-pass.word_0123");
      expect(resolveEnv(r, container(r.get("Deployment", API), "api")).OFFLOAD_NATS_URL).toBe(`nats://tasks:Given-pass.word_0123@${NATS}.${NAMESPACE}.svc:4222`);
    });

    it("honors an existing Secret for the bundled server: none is made and every reference names it", () => {
      const r = template({ "nats.auth.existingSecret": "nats-creds", "nats.replicas": 3 });
      checkInvariants(r, rules);
      expect(r.find("Secret", NATS_AUTH)).toBeUndefined();
      const n = container(r.get("StatefulSet", NATS), "nats");
      expect(env(n, "NATS_AUTH_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: "nats-creds", key: "password" });
      expect(env(container(r.get("Deployment", API), "api"), "OFFLOAD_NATS_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: "nats-creds", key: "password" });
      const c = container(r.get("Deployment", CONTROLLER), "controller");
      expect((c.env ?? []).map((e) => e.name)).not.toContain("OFFLOAD_NATS_PASSWORD");
      expect(env(c, "OFFLOAD_NATS_CREDENTIALS_SECRET").value).toBe("nats-creds");
    });

    it("nats.auth.enabled=false renders none of it", () => {
      for (const replicas of [1, 3]) {
        const r = template({ "nats.auth.enabled": false, "nats.replicas": replicas });
        checkInvariants(r, rules);
        expect(r.find("Secret", NATS_AUTH)).toBeUndefined();
        const conf = String(at(r.get("ConfigMap", NATS), "data", "nats.conf"));
        expect(conf).not.toContain("authorization");
        expect(conf).not.toContain("$NATS_");
        const n = container(r.get("StatefulSet", NATS), "nats");
        expect((n.env ?? []).map((e) => e.name)).toEqual(["SERVER_NAME"]);
        expect(at(r.get("StatefulSet", NATS), "spec", "template", "metadata", "annotations", "checksum/nats-auth")).toBeUndefined();
        for (const [name, cname] of [[API, "api"], [CONTROLLER, "controller"]] as const) {
          const c = container(r.get("Deployment", name), cname);
          expect(env(c, "OFFLOAD_NATS_URL").value).toBe(`nats://${NATS}.${NAMESPACE}.svc:4222`);
          const names = (c.env ?? []).map((e) => e.name);
          for (const x of ["OFFLOAD_NATS_USER", "OFFLOAD_NATS_PASSWORD", "OFFLOAD_NATS_CREDENTIALS_SECRET"]) expect(names).not.toContain(x);
        }
        const t = natsConfigTest(r);
        expect(t.status, t.output).toBe(0);
        if (replicas === 3) expect([...conf.matchAll(/nats:\/\/(\S+):6222/g)].length).toBe(3);
      }
    });

    it("external NATS: credentials from an existing Secret in every URL (replacing any given in it), or the URL as given", () => {
      const url = "nats://old:creds@nats-a.messaging.svc:4222,tls://nats-b.messaging.svc:4222";
      const r = template({ ...EXTERNAL, "nats.url": url, "nats.auth.existingSecret": "ext-nats" });
      checkInvariants(r, rules);
      expect(r.ofKind("Secret").map((s) => s.metadata.name)).toEqual([]);
      const hosts = "nats://nats-a.messaging.svc:4222,tls://nats-b.messaging.svc:4222";
      const a = container(r.get("Deployment", API), "api");
      expect(env(a, "OFFLOAD_NATS_USER").valueFrom?.secretKeyRef).toEqual({ name: "ext-nats", key: "user" });
      expect(env(a, "OFFLOAD_NATS_PASSWORD").valueFrom?.secretKeyRef).toEqual({ name: "ext-nats", key: "password" });
      expect(env(a, "OFFLOAD_NATS_URL").value).toBe(CREDS_URL(hosts));
      // The controller: every URL without credentials (the given ones dropped too), and the Secret's name for the workers.
      const ctl = container(r.get("Deployment", CONTROLLER), "controller");
      expect((ctl.env ?? []).map((e) => e.name)).not.toContain("OFFLOAD_NATS_USER");
      expect((ctl.env ?? []).map((e) => e.name)).not.toContain("OFFLOAD_NATS_PASSWORD");
      expect(env(ctl, "OFFLOAD_NATS_URL").value).toBe(hosts);
      expect(WORKER_NATS_URL(env(ctl, "OFFLOAD_NATS_URL").value ?? "")).toBe(CREDS_URL(hosts));
      expect(env(ctl, "OFFLOAD_NATS_CREDENTIALS_SECRET").value).toBe("ext-nats");

      const plain = template(EXTERNAL);
      const c = container(plain.get("Deployment", CONTROLLER), "controller");
      expect(env(c, "OFFLOAD_NATS_URL").value).toBe(EXTERNAL["nats.url"]);
      expect((c.env ?? []).map((e) => e.name)).not.toContain("OFFLOAD_NATS_CREDENTIALS_SECRET");
      expect(plain.find("Secret", NATS_AUTH)).toBeUndefined();
    });
  });

  it("ships the repository's CRDs unchanged, byte for byte", () => {
    const repo = join(ROOT, "crds");
    const chart = join(CHART, "crds");
    expect(existsSync(repo), "crds/ (run npm run crds)").toBe(true);
    expect(existsSync(chart), "charts/offload/crds/ (run npm run crds)").toBe(true);
    const files = readdirSync(repo).filter((f) => f.endsWith(".yaml")).sort();
    expect(files.length).toBeGreaterThan(0);
    expect(readdirSync(chart).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(chart, f)).equals(readFileSync(join(repo, f))), f).toBe(true);
    // And helm installs them: the rendered CRDs are the TaskWorker, TaskRun and TaskSchedule ones.
    const crds = template().ofKind("CustomResourceDefinition").map((c) => c.metadata.name).sort();
    expect(crds).toEqual(["taskruns.offload.dev", "taskschedules.offload.dev", "taskworkers.offload.dev"]);
  });

  describe("rejects wrong values with a message that names them", () => {
    const fails = refusal;

    it("a negative replica count", () => {
      expect(fails({ "api.replicas": -1 })).toMatch(/api\.replicas: Must be greater than or equal to 0/);
      expect(fails({ "controller.replicas": -2 })).toMatch(/controller\.replicas: Must be greater than or equal to 0/);
    });

    it("a heap cap too small for the run API", () => {
      expect(fails({ "api.maxOldSpaceMiB": 32 })).toMatch(/api\.maxOldSpaceMiB: Must be greater than or equal to 64/);
    });

    it("a negative retention", () => {
      expect(fails({ "api.runRetentionDays": -1 })).toMatch(/api\.runRetentionDays: Must be greater than or equal to 0/);
      expect(fails({ "api.failedRunRetentionDays": "long" })).toMatch(/api\.failedRunRetentionDays: Invalid type/);
    });

    it("a NATS password too short or not URL-safe, and a NATS user that is not URL-safe", () => {
      expect(fails({ "nats.auth.password": "short" })).toMatch(/nats\.auth\.password must be at least 16 URL-safe characters/);
      expect(fails({ "nats.auth.password": "long-enough-but-has@" })).toMatch(/nats\.auth\.password must be at least 16 URL-safe characters/);
      expect(fails({ "nats.auth.user": "a:b" })).toMatch(/nats\.auth\.user: Does not match pattern/);
      expect(fails({ "nats.auth.enabled": "yes" })).toMatch(/nats\.auth\.enabled: Invalid type/);
    });

    it("a token too short to be a secret", () => {
      expect(fails({ "auth.mode": "token", "apiToken.value": "short" })).toMatch(/apiToken\.value must be at least 16 characters/);
    });

    it("an unknown top-level key", () => {
      expect(fails({ replicaCount: 3 })).toMatch(/\(root\): Additional property replicaCount is not allowed/);
      expect(fails({ "api.replicaz": 3 })).toMatch(/api: Additional property replicaz is not allowed/);
    });

    it("external NATS without a URL", () => {
      expect(fails({ "nats.mode": "external" })).toMatch(/nats\.url: String length must be greater than or equal to 1/);
      expect(fails({ "nats.mode": "external", "nats.url": null })).toMatch(/nats: url is required/);
      expect(fails({ "nats.mode": "external", "nats.url": "not a url" })).toMatch(/nats\.url: Does not match pattern/);
    });

    it("external PostgreSQL without its Secret, and a NATS cluster of two", () => {
      expect(fails({ "postgresql.mode": "external" })).toMatch(/postgresql\.existingSecret: String length must be greater than or equal to 1/);
      expect(fails({ "nats.replicas": 2 })).toMatch(/nats\.replicas/);
    });

    it("a missing resource request", () => {
      expect(fails({ "api.resources.requests": null })).toMatch(/api\.resources: requests is required/);
      expect(fails({ "nats.resources.requests.memory": null })).toMatch(/nats\.resources\.requests: memory is required/);
    });
  });
});
