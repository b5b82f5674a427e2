/**
 * The RBAC authorizer, as `plugin/pkg/auth/authorizer/rbac/rbac.go`
 * (`Authorize`, `RuleAllows`) and `pkg/registry/rbac/validation/rule.go`
 * (`VisitRulesFor`, `appliesToUser`, the binding describers) evaluate it, and
 * the ClusterRole aggregation of
 * `pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go`.
 * Rule matching is `pkg/apis/rbac/v1/evaluation_helpers.go`.
 */
import type { Obj } from "../fields.js";
import { labelSelectorObject } from "../selectors.js";
import type { AccessDecision, NonResourceAttributes, ResourceAttributes, UserInfo } from "./types.js";

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

interface RoleRef {
  kind: string;
  name: string;
}

/** The RBAC objects an evaluation reads (the listers of the real authorizer). */
export interface RbacObjects {
  clusterRoleBindings(): Obj[];
  roleBindings(namespace: string): Obj[];
  clusterRole(name: string): Obj | undefined;
  role(namespace: string, name: string): Obj | undefined;
}

/** What is asked: the user (as a SubjectAccessReview's spec gives it) and either resource or non-resource attributes. */
export interface Attributes {
  user: Pick<UserInfo, "username" | "groups">;
  resource?: ResourceAttributes;
  nonResource?: NonResourceAttributes;
}

const has = (xs: readonly string[] | undefined, x: string): boolean => (xs ?? []).includes(x);
const rulesOf = (o: Obj | undefined): PolicyRule[] => ((o?.rules as PolicyRule[] | null | undefined) ?? []);
const nameOf = (o: Obj): string => String((o.metadata as Obj).name);
/** Go's `a.Name < b.Name`: by UTF-16 code units here, the same order for the ASCII names Kubernetes allows. */
const byName = (a: Obj, b: Obj): number => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0);

// evaluation_helpers.go
const verbMatches = (r: PolicyRule, verb: string): boolean => has(r.verbs, "*") || has(r.verbs, verb);
const apiGroupMatches = (r: PolicyRule, group: string): boolean => has(r.apiGroups, "*") || has(r.apiGroups, group);
const resourceNameMatches = (r: PolicyRule, name: string): boolean => (r.resourceNames ?? []).length === 0 || has(r.resourceNames, name);

/** `ResourceMatches`: `*`, the exact `resource/subresource`, or `*\/subresource` for any resource's subresource. */
function resourceMatches(r: PolicyRule, combined: string, subresource: string): boolean {
  for (const rr of r.resources ?? []) {
    if (rr === "*" || rr === combined) return true;
    if (subresource && rr.length === subresource.length + 2 && rr.startsWith("*/") && rr.endsWith(subresource)) return true;
  }
  return false;
}

/** `NonResourceURLMatches`: `*`, the exact path, or a prefix ending in `*`. */
function nonResourceURLMatches(r: PolicyRule, path: string): boolean {
  return (r.nonResourceURLs ?? []).some((u) => u === "*" || u === path || (u.endsWith("*") && path.startsWith(u.slice(0, -1))));
}

/** rbac.go `RuleAllows`. */
export function ruleAllows(a: Attributes, r: PolicyRule): boolean {
  if (a.resource) {
    const res = a.resource;
    const sub = res.subresource ?? "";
    const combined = sub ? `${res.resource ?? ""}/${sub}` : (res.resource ?? "");
    return verbMatches(r, res.verb ?? "") && apiGroupMatches(r, res.group ?? "") && resourceMatches(r, combined, sub) && resourceNameMatches(r, res.name ?? "");
  }
  return verbMatches(r, a.nonResource?.verb ?? "") && nonResourceURLMatches(r, a.nonResource?.path ?? "");
}

/** rule.go `appliesToUser`: a ServiceAccount subject without a namespace is one of the binding's namespace. */
function appliesToUser(user: Attributes["user"], s: Subject, bindingNamespace: string): boolean {
  if (s.kind === "User") return user.username === s.name;
  if (s.kind === "Group") return has(user.groups, s.name);
  if (s.kind === "ServiceAccount") {
    const ns = s.namespace || bindingNamespace;
    return ns !== "" && user.username === `system:serviceaccount:${ns}:${s.name}`;
  }
  return false;
}

/** rule.go `describeSubject`. */
function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === "ServiceAccount") return `${s.kind} ${JSON.stringify(`${s.name}/${s.namespace || bindingNamespace}`)}`;
  return `${s.kind} ${JSON.stringify(s.name)}`;
}

/**
 * rbac.go `Authorize` over rule.go `VisitRulesFor`: ClusterRoleBindings first,
 * then the RoleBindings of the request's namespace; the first rule that allows
 * names its binding in the reason. Nothing allows → no opinion, with the
 * errors met on the way (a binding to a missing role) as the reason, else none.
 */
export function authorize(objs: RbacObjects, a: Attributes): AccessDecision {
  const errors: string[] = [];
  const roleRules = (ref: RoleRef, namespace: string): PolicyRule[] | undefined => {
    if (ref.kind === "ClusterRole") {
      const r = objs.clusterRole(ref.name);
      if (!r) errors.push(`clusterrole.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found`);
      return r && rulesOf(r);
    }
    if (ref.kind === "Role") {
      const r = objs.role(namespace, ref.name);
      if (!r) errors.push(`role.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found`);
      return r && rulesOf(r);
    }
    errors.push(`unsupported role reference kind: ${JSON.stringify(ref.kind)}`);
    return undefined;
  };
  const visit = (bindings: Obj[], namespace: string): string | undefined => {
    for (const b of [...bindings].sort(byName)) {
      const subject = ((b.subjects as Subject[] | null | undefined) ?? []).find((s) => appliesToUser(a.user, s, namespace));
      if (!subject) continue;
      const ref = b.roleRef as RoleRef;
      const rules = roleRules(ref, namespace);
      if (!rules?.some((r) => ruleAllows(a, r))) continue;
      const name = String((b.metadata as Obj).name);
      return namespace
        ? `RoleBinding ${JSON.stringify(`${name}/${namespace}`)} of ${ref.kind} ${JSON.stringify(ref.name)} to ${describeSubject(subject, namespace)}`
        : `ClusterRoleBinding ${JSON.stringify(name)} of ${ref.kind} ${JSON.stringify(ref.name)} to ${describeSubject(subject, "")}`;
    }
    return undefined;
  };
  const namespace = a.resource?.namespace ?? "";
  const source = visit(objs.clusterRoleBindings(), "") ?? (namespace ? visit(objs.roleBindings(namespace), namespace) : undefined);
  if (source) return { allowed: true, reason: `RBAC: allowed by ${source}` };
  // utilerrors.NewAggregate: one error is its message, several are bracketed.
  const agg = errors.length === 1 ? errors[0]! : `[${errors.join(", ")}]`;
  return errors.length ? { allowed: false, reason: `RBAC: ${agg}` } : { allowed: false };
}

/**
 * What the ClusterRole aggregation controller would write
 * (`syncClusterRole`): for each ClusterRole with an `aggregationRule`, selector
 * by selector, the rules of the other ClusterRoles it matches in name order,
 * without repeats. Roles aggregated into aggregated roles (`edit` into
 * `admin`) settle after a few rounds, as the controller's requeues of every
 * aggregated role do. Returns name → rules for those whose rules must change.
 * (The controller writes them with a forced server-side apply; the stand-in
 * with a merge patch by the same field manager.)
 */
export function aggregate(clusterRoles: Obj[]): Map<string, PolicyRule[]> {
  const current = new Map(clusterRoles.map((r) => [nameOf(r), r]));
  const changes = new Map<string, PolicyRule[]>();
  const sorted = [...clusterRoles].sort(byName);
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  for (let round = 0; round < 10; round++) {
    let changed = false;
    for (const role of sorted) {
      const name = nameOf(role);
      const rule = role.aggregationRule as { clusterRoleSelectors?: Obj[] } | undefined;
      if (!rule) continue;
      const rules: PolicyRule[] = [];
      for (const selector of rule.clusterRoleSelectors ?? []) {
        const matches = labelSelectorObject(selector);
        for (const other of sorted) {
          if (nameOf(other) === name || !matches(other)) continue;
          for (const r of rulesOf(current.get(nameOf(other)))) if (!rules.some((x) => same(x, r))) rules.push(r);
        }
      }
      if (!same(rules, rulesOf(current.get(name)))) {
        current.set(name, { ...current.get(name), rules });
        changes.set(name, rules);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return changes;
}
