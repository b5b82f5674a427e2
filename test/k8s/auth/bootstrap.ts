/**
 * The ClusterRoles and ClusterRoleBindings a v1.32 cluster starts with, from
 * `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`: the user-facing
 * `cluster-admin`, `admin`, `edit`, `view` (the last three aggregated from
 * roles labelled `rbac.authorization.k8s.io/aggregate-to-*`, as there), the
 * `system:aggregate-to-*` roles that feed them (their rules cut down to the
 * resources the stand-in serves, plus the common core ones), and
 * `system:auth-delegator`, `system:basic-user`, `system:discovery`,
 * `system:public-info-viewer` with their bindings.
 */
import type { Obj } from "../fields.js";
import type { PolicyRule } from "./rbac.js";

const RBAC = "rbac.authorization.k8s.io";
const DEFAULTS = { "kubernetes.io/bootstrapping": "rbac-defaults" };
const AUTOUPDATE = { "rbac.authorization.kubernetes.io/autoupdate": "true" };

const READ = ["get", "list", "watch"];
const WRITE = ["create", "delete", "deletecollection", "patch", "update"];

const rule = (apiGroups: string[], resources: string[], verbs: string[]): PolicyRule => ({ verbs, apiGroups, resources });

function clusterRole(name: string, rules: PolicyRule[], extra: { labels?: Record<string, string>; aggregateFrom?: string } = {}): Obj {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: "ClusterRole",
    metadata: { name, labels: { ...DEFAULTS, ...extra.labels }, annotations: AUTOUPDATE },
    ...(extra.aggregateFrom ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [`${RBAC}/aggregate-to-${extra.aggregateFrom}`]: "true" } }] } } : {}),
    rules,
  };
}

function clusterRoleBinding(name: string, role: string, subjects: Obj[]): Obj {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: "ClusterRoleBinding",
    metadata: { name, labels: DEFAULTS, annotations: AUTOUPDATE },
    roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: role },
    subjects,
  };
}

const group = (name: string): Obj => ({ apiGroup: RBAC, kind: "Group", name });

/** Namespaced resources each level may touch (policy.go lists many more; these are those of the stand-in and the usual core ones). */
const VIEWABLE: [string[], string[]][] = [
  [[""], ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "pods/log", "pods/status", "replicationcontrollers", "services", "serviceaccounts", "events"]],
  [["apps"], ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "statefulsets", "daemonsets"]],
  [["batch"], ["jobs", "cronjobs"]],
  [["coordination.k8s.io"], ["leases"]],
];
const EDITABLE: [string[], string[]][] = [
  [[""], ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "replicationcontrollers", "services", "serviceaccounts", "secrets"]],
  [["apps"], ["deployments", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "daemonsets"]],
  [["batch"], ["jobs", "cronjobs"]],
  [["coordination.k8s.io"], ["leases"]],
];

export function bootstrapPolicy(): Obj[] {
  return [
    clusterRole("cluster-admin", [rule(["*"], ["*"], ["*"]), { verbs: ["*"], nonResourceURLs: ["*"] }]),
    // Their rules are the aggregation controller's to fill.
    clusterRole("admin", [], { aggregateFrom: "admin" }),
    clusterRole("edit", [], { aggregateFrom: "edit", labels: { [`${RBAC}/aggregate-to-admin`]: "true" } }),
    clusterRole("view", [], { aggregateFrom: "view", labels: { [`${RBAC}/aggregate-to-edit`]: "true" } }),
    clusterRole(
      "system:aggregate-to-admin",
      [rule([RBAC], ["rolebindings", "roles"], [...READ, ...WRITE]), rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]), rule([""], ["namespaces"], READ)],
      { labels: { [`${RBAC}/aggregate-to-admin`]: "true" } },
    ),
    clusterRole("system:aggregate-to-edit", [...EDITABLE.map(([g, r]) => rule(g, r, WRITE)), rule([""], ["pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token"], ["create"]), rule([""], ["secrets"], READ)], {
      labels: { [`${RBAC}/aggregate-to-edit`]: "true" },
    }),
    clusterRole("system:aggregate-to-view", [...VIEWABLE.map(([g, r]) => rule(g, r, READ)), rule([""], ["namespaces"], READ)], { labels: { [`${RBAC}/aggregate-to-view`]: "true" } }),
    clusterRole("system:auth-delegator", [rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]), rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"])]),
    clusterRole("system:basic-user", [rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]), rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])]),
    clusterRole("system:discovery", [{ verbs: ["get"], nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"] }]),
    clusterRole("system:public-info-viewer", [{ verbs: ["get"], nonResourceURLs: ["/healthz", "/livez", "/readyz", "/version", "/version/"] }]),
    clusterRoleBinding("cluster-admin", "cluster-admin", [group("system:masters")]),
    clusterRoleBinding("system:basic-user", "system:basic-user", [group("system:authenticated")]),
    clusterRoleBinding("system:discovery", "system:discovery", [group("system:authenticated")]),
    clusterRoleBinding("system:public-info-viewer", "system:public-info-viewer", [group("system:authenticated"), group("system:unauthenticated")]),
  ];
}
