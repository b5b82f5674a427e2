/**
 * Defaults and validation of the RBAC objects (Role, ClusterRole,
 * RoleBinding, ClusterRoleBinding) as the real server applies them on every
 * write: `pkg/apis/rbac/v1/defaults.go` (a roleRef's and a User or Group
 * subject's apiGroup) and `pkg/apis/rbac/validation/validation.go` (rules,
 * aggregation rules, role references, subjects; a binding's roleRef cannot
 * change). The escalation check (a writer may only grant what it holds) is
 * not modelled: the stand-in's clients are admins.
 */
import { deepEqual, isObj, type Obj } from "../fields.js";
import type { ResourceType } from "../resources.js";
import type { StatusCause } from "../schema/index.js";

const RBAC = "rbac.authorization.k8s.io";

const isRbac = (t: ResourceType): boolean => t.group === RBAC;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** Go's `%q` of a string slice, as field.Invalid prints one. */
const goList = (xs: unknown[]): string => `[]string{${xs.map((x) => JSON.stringify(x)).join(", ")}}`;

/** SetDefaults_RoleBinding / _ClusterRoleBinding / _Subject. */
export function defaultRbacObject(t: ResourceType, obj: Obj): void {
  if (!isRbac(t) || !t.kind.endsWith("Binding")) return;
  if (isObj(obj.roleRef) && !obj.roleRef.apiGroup) obj.roleRef.apiGroup = RBAC;
  for (const s of list(obj.subjects)) {
    if (isObj(s) && !s.apiGroup && (s.kind === "User" || s.kind === "Group")) s.apiGroup = RBAC;
  }
}

const required = (field: string, detail?: string): StatusCause => ({ field, reason: "FieldValueRequired", message: detail ? `Required value: ${detail}` : "Required value" });
const unsupported = (field: string, value: unknown, supported: string[]): StatusCause => ({
  field,
  reason: "FieldValueNotSupported",
  message: `Unsupported value: ${JSON.stringify(value ?? "")}: supported values: ${supported.map((s) => JSON.stringify(s)).join(", ")}`,
});
const invalidCause = (field: string, shown: string, detail: string): StatusCause => ({ field, reason: "FieldValueInvalid", message: `Invalid value: ${shown}: ${detail}` });

/** The causes a write of an RBAC object earns; `old` is the stored object on update. */
export function rbacCauses(t: ResourceType, obj: Obj, old: Obj | undefined): StatusCause[] {
  if (!isRbac(t)) return [];
  if (t.kind === "Role" || t.kind === "ClusterRole") return roleCauses(obj, t.kind === "Role");
  return bindingCauses(obj, old, t.kind === "RoleBinding");
}

/** ValidatePolicyRule for each rule; a ClusterRole's aggregationRule needs a selector. */
function roleCauses(role: Obj, namespaced: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  list(role.rules).forEach((r, i) => {
    const rule = isObj(r) ? r : {};
    const at = `rules[${i}]`;
    if (list(rule.verbs).length === 0) out.push(required(`${at}.verbs`, "verbs must contain at least one value"));
    const urls = list(rule.nonResourceURLs);
    if (urls.length) {
      if (namespaced) out.push(invalidCause(`${at}.nonResourceURLs`, goList(urls), "namespaced rules cannot apply to non-resource URLs"));
      if (list(rule.apiGroups).length || list(rule.resources).length) out.push(invalidCause(`${at}.nonResourceURLs`, goList(urls), "rules cannot apply to both regular resources and non-resource URLs"));
      return;
    }
    if (list(rule.apiGroups).length === 0) out.push(required(`${at}.apiGroups`, "resource rules must supply at least one api group"));
    if (list(rule.resources).length === 0) out.push(required(`${at}.resources`, "resource rules must supply at least one resource"));
  });
  if (isObj(role.aggregationRule) && list(role.aggregationRule.clusterRoleSelectors).length === 0) {
    out.push(required("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector required if aggregationRule is non-nil"));
  }
  return out;
}

/** ValidateRoleBinding / ValidateClusterRoleBinding (+ their Update: the roleRef is fixed once made). */
function bindingCauses(b: Obj, old: Obj | undefined, namespaced: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const ref = isObj(b.roleRef) ? b.roleRef : {};
  if (ref.apiGroup !== RBAC) out.push(unsupported("roleRef.apiGroup", ref.apiGroup, [RBAC]));
  const kinds = namespaced ? ["Role", "ClusterRole"] : ["ClusterRole"];
  if (!kinds.includes(String(ref.kind ?? ""))) out.push(unsupported("roleRef.kind", ref.kind, kinds));
  if (!ref.name) out.push(required("roleRef.name"));
  list(b.subjects).forEach((s, i) => {
    const sub = isObj(s) ? s : {};
    const at = `subjects[${i}]`;
    if (!sub.name) out.push(required(`${at}.name`));
    if (sub.kind === "ServiceAccount") {
      if (sub.apiGroup) out.push(unsupported(`${at}.apiGroup`, sub.apiGroup, [""]));
      if (!namespaced && !sub.namespace) out.push(required(`${at}.namespace`));
    } else if (sub.kind === "User" || sub.kind === "Group") {
      if (sub.apiGroup !== RBAC) out.push(unsupported(`${at}.apiGroup`, sub.apiGroup, [RBAC]));
    } else out.push(unsupported(`${at}.kind`, sub.kind, ["ServiceAccount", "User", "Group"]));
  });
  const oldRef = old && isObj(old.roleRef) ? old.roleRef : undefined;
  if (oldRef && !deepEqual(oldRef, b.roleRef)) {
    const shown = `rbac.RoleRef{APIGroup:${JSON.stringify(ref.apiGroup ?? "")}, Kind:${JSON.stringify(ref.kind ?? "")}, Name:${JSON.stringify(ref.name ?? "")}}`;
    out.push(invalidCause("roleRef", shown, "cannot change roleRef"));
  }
  return out;
}
