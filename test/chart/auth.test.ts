/**
 * The chart's side of authentication and authorization (auth.mode), the run
 * API's rate limit and the NetworkPolicies, rendered by the real helm; then the
 * rendered RBAC applied to the Kubernetes stand-in, whose RBAC authorizer and
 * ClusterRole aggregation answer SubjectAccessReviews as kube-apiserver does:
 * what a namespace editor, viewer, the controller and the run API may do.
 */
import { AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1ClusterRole, type V1ClusterRoleBinding } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desiredDeployment } from "../../operator/src/controller/desired.js";
import { TaskWorkerSchema } from "../../operator/src/crds/schemas.js";
import { startFakeKube, type FakeKube } from "../k8s/index.js";
import { waitFor } from "../support/index.js";
import { CHART, NAMESPACE, RELEASE, at, container, ensureHelm, env, helm, podSpec, refusal, template, type K8sObject, type Rendered } from "./helm.js";

const FULL = `${RELEASE}-offload`;
const API = `${FULL}-api`;
const CONTROLLER = `${FULL}-controller`;
const NATS = `${FULL}-nats`;
const POSTGRES = `${FULL}-postgresql`;
const TOKEN_DIR = "/var/run/secrets/offload";
const AGG = "rbac.authorization.k8s.io/aggregate-to-";
const RUN_ROLES = ["offload-runs-creator", "offload-runs-viewer", "offload-runs-operator"];

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
type Peer = { namespaceSelector?: { matchLabels: Record<string, string> }; podSelector?: { matchLabels: Record<string, string> } };
type IngressRule = { ports: { port: string | number; protocol: string }[]; from: Peer[] };

const names = (r: Rendered, kind: string): string[] => r.ofKind(kind).map((o) => o.metadata.name).sort();
const envNames = (w: K8sObject, c: string): string[] => (container(w, c).env ?? []).map((e) => e.name);
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
const podLabels = (w: K8sObject): Record<string, string> => at(w, "spec", "template", "metadata", "labels") as Record<string, string>;

/** The labels the controller puts on a TaskWorker's pods (desired.ts), for the NetworkPolicy's worker peers. */
function workerPodLabels(): Record<string, string> {
  const tw = TaskWorkerSchema.parse({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "pool", namespace: "a", uid: "u" }, spec: { image: "i:1", module: "m.js" } });
  return at(desiredDeployment(tw), "spec", "template", "metadata", "labels") as Record<string, string>;
}

describe("the chart's auth, rate limit and network policy", () => {
  beforeAll(() => ensureHelm());

  describe("auth.mode kubernetes (the default)", () => {
    let r: Rendered;
    beforeAll(() => {
      r = template();
    });

    it("the run API runs as its own ServiceAccount, bound to system:auth-delegator, with its token mounted to call TokenReview", () => {
      const api = r.get("Deployment", API);
      expect(podSpec(api).serviceAccountName).toBe(API);
      expect(podSpec(api).automountServiceAccountToken).toBe(true);
      expect(r.get("ServiceAccount", API).metadata.namespace).toBe(NAMESPACE);
      const binding = r.get("ClusterRoleBinding", `${API}-auth-delegator`);
      expect(at(binding, "roleRef")).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" });
      expect(at(binding, "subjects")).toEqual([{ kind: "ServiceAccount", name: API, namespace: NAMESPACE }]);
      const a = container(api, "api");
      expect(env(a, "OFFLOAD_AUTH").value).toBe("kubernetes");
      expect(env(a, "OFFLOAD_AUTH_AUDIENCE").value).toBe("offload");
      expect(env(a, "OFFLOAD_AUTH_CACHE_SECONDS").value).toBe("10");
      expect(env(a, "OFFLOAD_AUTH_CACHE_ENTRIES").value).toBe("10000");
      expect(envNames(api, "api")).not.toContain("OFFLOAD_API_TOKEN");
    });

    it("no shared token anywhere: no Secret, no process reads one", () => {
      expect(r.find("Secret", `${FULL}-api-token`)).toBeUndefined();
      expect(JSON.stringify(r.objects)).not.toContain("OFFLOAD_API_TOKEN");
    });

    it("the controller presents a projected token of its ServiceAccount and passes the mode on to worker pods", () => {
      const ctl = r.get("Deployment", CONTROLLER);
      const c = container(ctl, "controller");
      expect(env(c, "OFFLOAD_AUTH").value).toBe("kubernetes");
      expect(env(c, "OFFLOAD_AUTH_AUDIENCE").value).toBe("offload");
      expect(env(c, "OFFLOAD_TOKEN_FILE").value).toBe(`${TOKEN_DIR}/token`);
      expect(at(c, "volumeMounts")).toContainEqual({ name: "offload-token", mountPath: TOKEN_DIR, readOnly: true });
      expect(podSpec(ctl).volumes).toContainEqual({
        name: "offload-token",
        projected: { sources: [{ serviceAccountToken: { audience: "offload", expirationSeconds: 3600, path: "token" } }] },
      });
      // It may submit, poll and cancel runs in every namespace, and nothing else through the run API.
      const role = r.get("ClusterRole", `${CONTROLLER}-runs`);
      expect(at(role, "rules")).toEqual([{ apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["create", "get", "list", "delete"] }]);
      const binding = r.get("ClusterRoleBinding", `${CONTROLLER}-runs`);
      expect(at(binding, "subjects")).toEqual([{ kind: "ServiceAccount", name: podSpec(ctl).serviceAccountName, namespace: NAMESPACE }]);
      expect(at(binding, "roleRef", "name")).toBe(`${CONTROLLER}-runs`);
    });

    it("ClusterRoles for apps, with release-independent names, aggregated into the built-in roles", () => {
      const rules = (name: string): Rule[] => at(r.get("ClusterRole", name), "rules") as Rule[];
      const labels = (name: string): Record<string, string> => r.get("ClusterRole", name).metadata.labels ?? {};
      expect(rules("offload-runs-creator")).toEqual([
        { apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["create", "get", "list"] },
        // A TaskSchedule starts runs: whoever may create runs in a namespace may manage its TaskSchedules.
        { apiGroups: ["offload.dev"], resources: ["taskschedules"], verbs: ["create", "get", "list", "watch", "update", "patch", "delete"] },
      ]);
      expect(rules("offload-runs-viewer")).toEqual([
        { apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["get", "list"] },
        { apiGroups: ["offload.dev"], resources: ["taskschedules"], verbs: ["get", "list", "watch"] },
      ]);
      expect(rules("offload-runs-operator")).toEqual([{ apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["get", "list", "delete", "update"] }]);
      expect(labels("offload-runs-creator")).toMatchObject({ [`${AGG}edit`]: "true", [`${AGG}admin`]: "true" });
      expect(labels("offload-runs-creator")).not.toHaveProperty(`${AGG}view`);
      expect(labels("offload-runs-viewer")).toMatchObject({ [`${AGG}view`]: "true", [`${AGG}edit`]: "true", [`${AGG}admin`]: "true" });
      expect(labels("offload-runs-operator")).toMatchObject({ [`${AGG}edit`]: "true", [`${AGG}admin`]: "true" });
      expect(labels("offload-runs-operator")).not.toHaveProperty(`${AGG}view`);
      // The same names whatever the release is called.
      const other = helm(["template", "another", CHART, "--namespace", "elsewhere"]);
      expect(other.status, other.stderr).toBe(0);
      for (const name of RUN_ROLES) expect(other.stdout).toContain(`name: ${name}\n`);
    });

    it("auth.runsClusterRoles=false (a second release) leaves the shared roles out, keeps the release's own RBAC", () => {
      const second = template({ "auth.runsClusterRoles": false });
      for (const name of RUN_ROLES) expect(second.find("ClusterRole", name)).toBeUndefined();
      expect(names(second, "ClusterRole")).toEqual([CONTROLLER, `${CONTROLLER}-runs`]);
      expect(names(second, "ClusterRoleBinding")).toEqual([`${API}-auth-delegator`, CONTROLLER, `${CONTROLLER}-runs`]);
    });

    it("a custom audience and cache reach the run API, the controller's token and (through the controller) the workers", () => {
      const custom = template({ auth: { mode: "kubernetes", audience: "tasks.example.com", cacheSeconds: 0, cacheEntries: 50, runsClusterRoles: true } });
      const a = container(custom.get("Deployment", API), "api");
      expect(env(a, "OFFLOAD_AUTH_AUDIENCE").value).toBe("tasks.example.com");
      expect(env(a, "OFFLOAD_AUTH_CACHE_SECONDS").value).toBe("0");
      expect(env(a, "OFFLOAD_AUTH_CACHE_ENTRIES").value).toBe("50");
      const ctl = custom.get("Deployment", CONTROLLER);
      expect(env(container(ctl, "controller"), "OFFLOAD_AUTH_AUDIENCE").value).toBe("tasks.example.com");
      expect(at(podSpec(ctl).volumes, 1, "projected", "sources", 0, "serviceAccountToken", "audience")).toBe("tasks.example.com");
    });
  });

  describe("auth.mode token and none", () => {
    it("token: the shared token Secret for the run API and the controller (and its workers), no auth RBAC, no ServiceAccount for the API", () => {
      const r = template({ "auth.mode": "token" });
      const api = r.get("Deployment", API);
      expect(env(container(api, "api"), "OFFLOAD_AUTH").value).toBe("token");
      expect(env(container(api, "api"), "OFFLOAD_API_TOKEN").valueFrom?.secretKeyRef).toEqual({ name: `${FULL}-api-token`, key: "token" });
      expect(podSpec(api).automountServiceAccountToken).toBe(false);
      expect(podSpec(api).serviceAccountName).toBeUndefined();
      const ctl = container(r.get("Deployment", CONTROLLER), "controller");
      expect(env(ctl, "OFFLOAD_API_TOKEN_SECRET").value).toBe(`${FULL}-api-token`);
      expect((ctl.env ?? []).map((e) => e.name)).not.toContain("OFFLOAD_TOKEN_FILE");
      expect(podSpec(r.get("Deployment", CONTROLLER)).volumes).not.toContainEqual(expect.objectContaining({ name: "offload-token" }));
      expect(names(r, "ClusterRole")).toEqual([CONTROLLER]);
      expect(names(r, "ClusterRoleBinding")).toEqual([CONTROLLER]);
      expect(names(r, "ServiceAccount")).toEqual([CONTROLLER]);
    });

    it("none: no token at all and no auth RBAC", () => {
      const r = template({ "auth.mode": "none" });
      expect(env(container(r.get("Deployment", API), "api"), "OFFLOAD_AUTH").value).toBe("none");
      expect(env(container(r.get("Deployment", CONTROLLER), "controller"), "OFFLOAD_AUTH").value).toBe("none");
      expect(JSON.stringify(r.objects)).not.toContain("OFFLOAD_API_TOKEN");
      expect(r.ofKind("Secret").map((s) => s.metadata.name)).not.toContain(`${FULL}-api-token`);
      expect(names(r, "ClusterRole")).toEqual([CONTROLLER]);
    });

    it("helm lint --strict passes in every mode", () => {
      for (const mode of ["kubernetes", "token", "none"]) {
        const res = helm(["lint", "--strict", CHART, "--namespace", NAMESPACE, "--set", `auth.mode=${mode},networkPolicy.enabled=true`]);
        expect(res.status, `${mode}\n${res.stdout}${res.stderr}`).toBe(0);
      }
    });
  });

  it("the rate limit reaches the run API (0 turns it off)", () => {
    const a = container(template().get("Deployment", API), "api");
    expect(env(a, "OFFLOAD_RATE_LIMIT_PER_SECOND").value).toBe("100");
    expect(env(a, "OFFLOAD_RATE_LIMIT_WINDOW_SECONDS").value).toBe("10");
    const off = container(template({ "api.rateLimit": { perSecond: 0, windowSeconds: 1 } }).get("Deployment", API), "api");
    expect(env(off, "OFFLOAD_RATE_LIMIT_PER_SECOND").value).toBe("0");
    expect(env(off, "OFFLOAD_RATE_LIMIT_WINDOW_SECONDS").value).toBe("1");
  });

  describe("networkPolicy", () => {
    const policy = (r: Rendered, name: string) => ({
      select: at(r.get("NetworkPolicy", name), "spec", "podSelector", "matchLabels") as Record<string, string>,
      types: at(r.get("NetworkPolicy", name), "spec", "policyTypes"),
      ingress: at(r.get("NetworkPolicy", name), "spec", "ingress") as IngressRule[],
    });
    const portNames = (w: K8sObject): string[] => (at(podSpec(w), "containers", 0, "ports") as { name: string }[]).map((p) => p.name);

    it("is off by default", () => {
      expect(template().ofKind("NetworkPolicy")).toEqual([]);
    });

    it("the run API: from the release namespace and labelled client namespaces only, on its http port", () => {
      const r = template({ "networkPolicy.enabled": true });
      expect(names(r, "NetworkPolicy")).toEqual([API, NATS, POSTGRES].sort());
      const api = r.get("Deployment", API);
      const p = policy(r, API);
      // It selects the run API's pods and nothing else of the chart.
      expect(matches(p.select, podLabels(api))).toBe(true);
      for (const w of [r.get("Deployment", CONTROLLER), r.get("StatefulSet", NATS), r.get("StatefulSet", POSTGRES)]) expect(matches(p.select, podLabels(w))).toBe(false);
      expect(p.types).toEqual(["Ingress"]);
      expect(p.ingress).toHaveLength(1);
      expect(p.ingress[0]!.ports).toEqual([{ port: "http", protocol: "TCP" }]);
      expect(portNames(api)).toContain("http");
      expect(p.ingress[0]!.from).toEqual([
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACE } } },
        { namespaceSelector: { matchLabels: { "offload.dev/client": "true" } } },
      ]);
    });

    it("NATS: the run API's pods and worker pods (as the controller labels them) in the release and client namespaces; routes between its nodes", () => {
      const r = template({ "networkPolicy.enabled": true, "nats.replicas": 3 });
      const nats = r.get("StatefulSet", NATS);
      const p = policy(r, NATS);
      expect(matches(p.select, podLabels(nats))).toBe(true);
      const [client, cluster] = p.ingress;
      expect(client!.ports).toEqual([{ port: "client", protocol: "TCP" }]);
      expect(cluster!.ports).toEqual([{ port: "cluster", protocol: "TCP" }]);
      expect(portNames(nats)).toEqual(expect.arrayContaining(["client", "cluster"]));
      // The run API's pods are a peer; the controller's are not (it never connects to NATS).
      const podOnly = client!.from.filter((f) => !f.namespaceSelector).map((f) => f.podSelector!.matchLabels);
      expect(podOnly.some((sel) => matches(sel, podLabels(r.get("Deployment", API))))).toBe(true);
      expect(podOnly.some((sel) => matches(sel, podLabels(r.get("Deployment", CONTROLLER))))).toBe(false);
      // Worker pods as desired.ts labels them, in the release namespace and in client namespaces.
      const workers = workerPodLabels();
      const workerPeers = client!.from.filter((f) => f.namespaceSelector && f.podSelector && matches(f.podSelector.matchLabels, workers));
      expect(workerPeers.map((f) => f.namespaceSelector!.matchLabels)).toEqual([{ "kubernetes.io/metadata.name": NAMESPACE }, { "offload.dev/client": "true" }]);
      // Every peer names pods: no namespace's pods at large may connect.
      for (const f of client!.from) expect(f.podSelector, JSON.stringify(f)).toBeDefined();
      expect(cluster!.from.map((f) => matches(f.podSelector!.matchLabels, podLabels(nats)))).toEqual([true]);
    });

    it("PostgreSQL: the run API's pods only", () => {
      const r = template({ "networkPolicy.enabled": true });
      const pg = r.get("StatefulSet", POSTGRES);
      const p = policy(r, POSTGRES);
      expect(matches(p.select, podLabels(pg))).toBe(true);
      expect(p.ingress).toHaveLength(1);
      expect(p.ingress[0]!.ports).toEqual([{ port: "postgresql", protocol: "TCP" }]);
      expect(portNames(pg)).toContain("postgresql");
      expect(p.ingress[0]!.from).toHaveLength(1);
      expect(matches(p.ingress[0]!.from[0]!.podSelector!.matchLabels, podLabels(r.get("Deployment", API)))).toBe(true);
      expect(p.ingress[0]!.from[0]!.namespaceSelector).toBeUndefined();
    });

    it("other client labels, extra sources for the run API, and no policy for an external NATS or PostgreSQL", () => {
      const extra = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } }, podSelector: { matchLabels: { app: "prometheus" } } };
      const r = template({
        networkPolicy: { enabled: true, clientNamespaceLabels: { team: "tasks", tier: "apps" }, apiExtraFrom: [extra] },
        "nats.mode": "external",
        "nats.url": "nats://nats.messaging.svc:4222",
        "postgresql.mode": "external",
        "postgresql.existingSecret": "db",
      });
      expect(names(r, "NetworkPolicy")).toEqual([API]);
      // The given labels replace the default ones (helm would merge a default map with them).
      expect(policy(r, API).ingress[0]!.from).toEqual([
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NAMESPACE } } },
        { namespaceSelector: { matchLabels: { team: "tasks", tier: "apps" } } },
        extra,
      ]);
    });
  });

  describe("refuses wrong values with a message that names them", () => {
    const fails = refusal;

    it("an unknown auth mode, an empty audience, a cache out of range", () => {
      expect(fails({ "auth.mode": "oidc" })).toMatch(/auth\.mode: auth\.mode must be one of the following: "kubernetes", "token", "none"/);
      expect(fails({ "auth.audience": "" })).toMatch(/auth\.audience: String length must be greater than or equal to 1/);
      expect(fails({ "auth.cacheSeconds": 301 })).toMatch(/auth\.cacheSeconds: Must be less than or equal to 300/);
      expect(fails({ "auth.cacheEntries": 0 })).toMatch(/auth\.cacheEntries: Must be greater than or equal to 1/);
      expect(fails({ "auth.runsClusterRoles": "no" })).toMatch(/auth\.runsClusterRoles: Invalid type/);
      expect(fails({ "auth.tokenFile": "/x" })).toMatch(/auth: Additional property tokenFile is not allowed/);
    });

    it("a negative or mistyped rate limit, a zero window", () => {
      expect(fails({ "api.rateLimit.perSecond": -1 })).toMatch(/api\.rateLimit\.perSecond: Must be greater than or equal to 0/);
      expect(fails({ "api.rateLimit.perSecond": "lots" })).toMatch(/api\.rateLimit\.perSecond: Invalid type/);
      expect(fails({ "api.rateLimit.windowSeconds": 0 })).toMatch(/api\.rateLimit\.windowSeconds: Must be greater than 0/);
    });

    it("a NetworkPolicy peer that would let everything in, a label value that is not a string, a mistyped switch", () => {
      expect(fails({ "networkPolicy.clientNamespaceLabels": { team: 1 } })).toMatch(/networkPolicy\.clientNamespaceLabels\.team: Invalid type/);
      expect(fails({ "networkPolicy.enabled": "true" })).toMatch(/networkPolicy\.enabled: Invalid type/);
      expect(fails({ "networkPolicy.apiExtraFrom": [{}] })).toMatch(/networkPolicy\.apiExtraFrom\.0: Must have at least 1 properties/);
    });
  });
});

/**
 * The rendered RBAC on the stand-in: whoever is bound to the built-in `edit`
 * in a namespace may delay runs there (aggregation), and not elsewhere.
 */
describe("the chart's RBAC, applied to the Kubernetes stand-in", () => {
  let fake: FakeKube;
  let authz: AuthorizationV1Api;
  let rbac: RbacAuthorizationV1Api;
  const RBAC = "rbac.authorization.k8s.io";

  const can = async (ns: string, sa: string, verb: string, namespace: string | undefined, resource = { group: "offload.dev", resource: "runs" }): Promise<boolean> => {
    const user = `system:serviceaccount:${ns}:${sa}`;
    const groups = ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"];
    const res = await authz.createSubjectAccessReview({
      body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user, groups, resourceAttributes: { ...resource, verb, ...(namespace ? { namespace } : {}) } } },
    });
    return res.status?.allowed === true;
  };

  beforeAll(async () => {
    ensureHelm();
    fake = await startFakeKube();
    const kc = fake.kubeConfig();
    authz = kc.makeApiClient(AuthorizationV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const r = template();
    for (const ns of ["a", "b", NAMESPACE]) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const sa of r.ofKind("ServiceAccount")) await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: sa as never });
    for (const role of r.ofKind("ClusterRole")) await rbac.createClusterRole({ body: role as unknown as V1ClusterRole });
    for (const binding of r.ofKind("ClusterRoleBinding")) await rbac.createClusterRoleBinding({ body: binding as unknown as V1ClusterRoleBinding });
    for (const [sa, role] of [["editor", "edit"], ["viewer", "view"], ["admin", "admin"], ["app", "offload-runs-creator"]] as const) {
      await core.createNamespacedServiceAccount({ namespace: "a", body: { metadata: { name: sa } } });
      await rbac.createNamespacedRoleBinding({
        namespace: "a",
        body: { metadata: { name: sa }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: role }, subjects: [{ kind: "ServiceAccount", name: sa, namespace: "a" }] },
      });
    }
    // The aggregation controller fills the built-in roles from the chart's labelled ones: wait until edit has them.
    await waitFor("edit to aggregate runs.offload.dev", async () => {
      const edit = await rbac.readClusterRole({ name: "edit" });
      return (edit.rules ?? []).some((rule) => rule.apiGroups?.includes("offload.dev") && rule.verbs.includes("create"));
    });
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("a ServiceAccount bound to edit in namespace a may delay, read, cancel and retry runs in a, and nothing in b", async () => {
    for (const verb of ["create", "get", "list", "delete", "update"]) expect(await can("a", "editor", verb, "a"), verb).toBe(true);
    for (const verb of ["create", "get", "list", "delete", "update"]) expect(await can("a", "editor", verb, "b"), verb).toBe(false);
  });

  it("view may read runs but not delay, cancel or retry them; admin may do all of it", async () => {
    expect(await can("a", "viewer", "get", "a")).toBe(true);
    expect(await can("a", "viewer", "list", "a")).toBe(true);
    for (const verb of ["create", "delete", "update"]) expect(await can("a", "viewer", verb, "a"), verb).toBe(false);
    for (const verb of ["create", "get", "list", "delete", "update"]) expect(await can("a", "admin", verb, "a"), verb).toBe(true);
  });

  it("a RoleBinding to offload-runs-creator grants delay and read, not cancel or retry", async () => {
    for (const verb of ["create", "get", "list"]) expect(await can("a", "app", verb, "a"), verb).toBe(true);
    for (const verb of ["delete", "update"]) expect(await can("a", "app", verb, "a"), verb).toBe(false);
    expect(await can("a", "app", "create", "b")).toBe(false);
  });

  it("edit may manage TaskSchedules in its namespace (they start runs there), view may only read them", async () => {
    const ts = { group: "offload.dev", resource: "taskschedules" };
    for (const verb of ["create", "get", "list", "watch", "update", "patch", "delete"]) expect(await can("a", "editor", verb, "a", ts), verb).toBe(true);
    expect(await can("a", "editor", "create", "b", ts)).toBe(false);
    for (const verb of ["get", "list", "watch"]) expect(await can("a", "viewer", verb, "a", ts), verb).toBe(true);
    for (const verb of ["create", "update", "delete"]) expect(await can("a", "viewer", verb, "a", ts), verb).toBe(false);
  });

  it("the controller may submit, poll and cancel runs in any namespace; the run API may review tokens and access, not act on runs", async () => {
    for (const verb of ["create", "get", "delete"]) expect(await can(NAMESPACE, CONTROLLER, verb, "b"), verb).toBe(true);
    expect(await can(NAMESPACE, CONTROLLER, "update", "b")).toBe(false);
    expect(await can(NAMESPACE, API, "create", undefined, { group: "authentication.k8s.io", resource: "tokenreviews" })).toBe(true);
    expect(await can(NAMESPACE, API, "create", undefined, { group: "authorization.k8s.io", resource: "subjectaccessreviews" })).toBe(true);
    expect(await can(NAMESPACE, API, "create", "a")).toBe(false);
    expect(await can(NAMESPACE, API, "get", NAMESPACE, { group: "", resource: "secrets" })).toBe(false);
  });
});
