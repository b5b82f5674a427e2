/**
 * The resource types the stand-in serves: the built-in ones it knows by
 * heart, and those a CustomResourceDefinition adds (made from the CRD here).
 */
import { isObj, type Obj } from "./fields.js";

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  singular?: string;
  shortNames?: string[];
  /** Cluster-scoped (Namespaces, CRDs): no namespace in the path or the object. */
  clusterScoped?: boolean;
  /** Has the status subresource: writes to the object ignore `.status`, writes to `/status` change only it. */
  status?: boolean;
  /** Has the scale subresource (paths as in a CRD, without the leading dot). */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** Field paths (dotted, no leading dot) a fieldSelector may name besides `metadata.name` and `metadata.namespace`. */
  selectableFields?: string[];
  /** For a custom resource: the name of the CRD that defines it (its schema admits every write). */
  crd?: string;
  /** Names are any path segment (no `/`, `%`, `.` or `..`), not DNS subdomains: the RBAC types (`system:auth-delegator`). */
  pathSegmentNames?: boolean;
  /** Only `create` is served, nothing stored (the reviews: `auth/` answers them). */
  createOnly?: boolean;
}

const EVENT_FIELDS = ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"];

export const BUILTIN_TYPES: readonly ResourceType[] = [
  { group: "", version: "v1", plural: "namespaces", kind: "Namespace", singular: "namespace", shortNames: ["ns"], clusterScoped: true, status: true, selectableFields: ["status.phase"] },
  { group: "", version: "v1", plural: "secrets", kind: "Secret", singular: "secret", selectableFields: ["type"] },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", singular: "configmap", shortNames: ["cm"] },
  { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", singular: "serviceaccount", shortNames: ["sa"] },
  { group: "", version: "v1", plural: "events", kind: "Event", singular: "event", shortNames: ["ev"], selectableFields: EVENT_FIELDS },
  {
    group: "apps",
    version: "v1",
    plural: "deployments",
    kind: "Deployment",
    singular: "deployment",
    shortNames: ["deploy"],
    status: true,
    scale: { specReplicasPath: "spec.replicas", statusReplicasPath: "status.replicas" },
  },
  // Field selectors as the real server allows them: pkg/registry/core/pod/strategy.go PodToSelectableFields and
  // pkg/registry/apps/replicaset/strategy.go ReplicaSetToSelectableFields.
  {
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    singular: "pod",
    shortNames: ["po"],
    status: true,
    selectableFields: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
  },
  {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    kind: "ReplicaSet",
    singular: "replicaset",
    shortNames: ["rs"],
    status: true,
    scale: { specReplicasPath: "spec.replicas", statusReplicasPath: "status.replicas" },
    selectableFields: ["status.replicas"],
  },
  { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", singular: "lease" },
  { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", singular: "event", shortNames: ["ev"], selectableFields: EVENT_FIELDS },
  {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    singular: "customresourcedefinition",
    shortNames: ["crd", "crds"],
    clusterScoped: true,
    status: true,
  },
  // RBAC (auth/rbac.ts evaluates it; auth/aggregation fills aggregated ClusterRoles).
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", singular: "role", pathSegmentNames: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", singular: "rolebinding", pathSegmentNames: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", singular: "clusterrole", pathSegmentNames: true, clusterScoped: true },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", singular: "clusterrolebinding", pathSegmentNames: true, clusterScoped: true },
  // The reviews: answered by auth/reviews.ts, never stored.
  { group: "authentication.k8s.io", version: "v1", plural: "tokenreviews", kind: "TokenReview", singular: "tokenreview", clusterScoped: true, createOnly: true },
  { group: "authentication.k8s.io", version: "v1", plural: "selfsubjectreviews", kind: "SelfSubjectReview", singular: "selfsubjectreview", clusterScoped: true, createOnly: true },
  { group: "authorization.k8s.io", version: "v1", plural: "subjectaccessreviews", kind: "SubjectAccessReview", singular: "subjectaccessreview", clusterScoped: true, createOnly: true },
  { group: "authorization.k8s.io", version: "v1", plural: "selfsubjectaccessreviews", kind: "SelfSubjectAccessReview", singular: "selfsubjectaccessreview", clusterScoped: true, createOnly: true },
  { group: "authorization.k8s.io", version: "v1", plural: "selfsubjectrulesreviews", kind: "SelfSubjectRulesReview", singular: "selfsubjectrulesreview", clusterScoped: true, createOnly: true },
  { group: "authorization.k8s.io", version: "v1", plural: "localsubjectaccessreviews", kind: "LocalSubjectAccessReview", singular: "localsubjectaccessreview", createOnly: true },
];

export const typeKey = (t: ResourceType): string => `${t.group}/${t.version}/${t.plural}`;
export const apiVersionOf = (t: ResourceType): string => (t.group ? `${t.group}/${t.version}` : t.version);
/** `plural.group` (or `plural` in the core group), as the real server names a resource in NotFound and Conflict messages. */
export const resourceName = (t: ResourceType): string => (t.group ? `${t.plural}.${t.group}` : t.plural);
/** `Kind.group` (or `Kind`), as the real server names a kind in Invalid messages. */
export const kindName = (t: ResourceType): string => (t.group ? `${t.kind}.${t.group}` : t.kind);

const stripDot = (p: string): string => p.replace(/^\./, "");

/** The resource types (one per served version) a CRD defines. */
export function typesOfCrd(crd: Obj): ResourceType[] {
  const spec = crd.spec as Obj;
  const names = spec.names as Obj;
  const name = (crd.metadata as Obj).name as string;
  const versions = (spec.versions as Obj[] | undefined) ?? [];
  // The top-level subresources/selectableFields apply when the versions share them (v1beta1 form, kept in v1's internal type).
  return versions
    .filter((v) => v.served !== false)
    .map((v): ResourceType => {
      const sub = (isObj(v.subresources) ? v.subresources : {}) as Obj;
      const scale = isObj(sub.scale) ? (sub.scale as Obj) : undefined;
      const selectable = (v.selectableFields as { jsonPath: string }[] | undefined) ?? [];
      return {
        group: spec.group as string,
        version: v.name as string,
        plural: names.plural as string,
        kind: names.kind as string,
        singular: (names.singular as string | undefined) ?? (names.kind as string).toLowerCase(),
        shortNames: (names.shortNames as string[] | undefined) ?? [],
        clusterScoped: spec.scope === "Cluster",
        status: isObj(sub.status),
        scale: scale
          ? {
              specReplicasPath: stripDot(scale.specReplicasPath as string),
              statusReplicasPath: stripDot(scale.statusReplicasPath as string),
              ...(typeof scale.labelSelectorPath === "string" ? { labelSelectorPath: stripDot(scale.labelSelectorPath) } : {}),
            }
          : undefined,
        selectableFields: selectable.map((f) => stripDot(f.jsonPath)),
        crd: name,
      };
    });
}

/** The status a CRD is created with (the establishing controller fills in the rest). */
export function initialCrdStatus(crd: Obj): Obj {
  const versions = (((crd.spec as Obj | undefined)?.versions as Obj[] | undefined) ?? []).filter((v) => v.storage === true);
  return { conditions: null, acceptedNames: { plural: "", kind: "" }, storedVersions: versions.map((v) => v.name) };
}

/** SetDefaults_CustomResourceDefinition(Spec): the conversion strategy and the names derived from the kind. */
export function defaultCrd(crd: Obj): void {
  if (!isObj(crd.spec)) return;
  const spec = crd.spec as Obj;
  if (!isObj(spec.conversion)) spec.conversion = { strategy: "None" };
  const names = isObj(spec.names) ? (spec.names as Obj) : undefined;
  if (names && typeof names.kind === "string") {
    if (names.singular === undefined) names.singular = names.kind.toLowerCase();
    if (names.listKind === undefined) names.listKind = `${names.kind}List`;
  }
}

/** `spec.versions[0].subresources.foo` → `["spec", "versions", "0", "subresources", "foo"]`. */
export function fieldPath(p: string): string[] {
  return p.split(/\.|\[(\d+)\]/).filter((x): x is string => x !== undefined && x !== "");
}
