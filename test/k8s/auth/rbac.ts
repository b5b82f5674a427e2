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

/** A rule's binding, worded as rule.go's describers (`ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`). */
type Visitor = (source: (() => string) | undefined, rule: PolicyRule | undefined, error: string | undefined) => boolean;

/**
 * rule.go `VisitRulesFor`: the rules of the ClusterRoleBindings, then of the
 * RoleBindings of `namespace`, that apply to `user`, each with its source;
 * a binding whose role is missing is an error. The visitor returns false to stop.
 */
function visitRulesFor(objs: RbacObjects, user: Attributes["user"], namespace: string, visitor: Visitor): void {
  const roleRules = (ref: RoleRef, ns: string): PolicyRule[] | string => {
    if (ref.kind === "ClusterRole") return objs.clusterRole(ref.name) ? rulesOf(objs.clusterRole(ref.name)) : `clusterrole.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found`;
    if (ref.kind === "Role") return objs.role(ns, ref.name) ? rulesOf(objs.role(ns, ref.name)) : `role.rbac.authorization.k8s.io ${JSON.stringify(ref.name)} not found`;
    return `unsupported role reference kind: ${JSON.stringify(ref.kind)}`;
  };
  const visit = (bindings: Obj[], ns: string): boolean => {
    for (const b of [...bindings].sort(byName)) {
      const subject = ((b.subjects as Subject[] | null | undefined) ?? []).find((s) => appliesToUser(user, s, ns));
      if (!subject) continue;
      const ref = b.roleRef as RoleRef;
      const rules = roleRules(ref, ns);
      if (typeof rules === "string") {
        if (!visitor(undefined, undefined, rules)) return false;
        continue;
      }
      const name = nameOf(b);
      const source = (): string =>
        ns
          ? `RoleBinding ${JSON.stringify(`${name}/${ns}`)} of ${ref.kind} ${JSON.stringify(ref.name)} to ${describeSubject(subject, ns)}`
          : `ClusterRoleBinding ${JSON.stringify(name)} of ${ref.kind} ${JSON.stringify(ref.name)} to ${describeSubject(subject, "")}`;
      for (const r of rules) if (!visitor(source, r, undefined)) return false;
    }
    return true;
  };
  if (visit(objs.clusterRoleBindings(), "") && namespace) visit(objs.roleBindings(namespace), namespace);
}

/** utilerrors.NewAggregate's text: one error is its message, several are bracketed. */
const aggregateText = (errors: string[]): string => (errors.length === 1 ? errors[0]! : `[${errors.join(", ")}]`);

/**
 * rbac.go `Authorize`: the first rule that allows names its binding in the
 * reason. Nothing allows → no opinion, with the errors met on the way (a
 * binding to a missing role) as the reason, else none.
 */
export function authorize(objs: RbacObjects, a: Attributes): AccessDecision {
  const errors: string[] = [];
  let source: string | undefined;
  visitRulesFor(objs, a.user, a.resource?.namespace ?? "", (src, rule, error) => {
    if (rule && src && ruleAllows(a, rule)) {
      source = src();
      return false;
    }
    if (error) errors.push(error);
    return true;
  });
  if (source) return { allowed: true, reason: `RBAC: allowed by ${source}` };
  return errors.length ? { allowed: false, reason: `RBAC: ${aggregateText(errors)}` } : { allowed: false };
}

/** rbac.go `RulesFor` (what a SelfSubjectRulesReview lists): every rule that applies to `user` in `namespace`, and the errors met. */
export function rulesFor(objs: RbacObjects, user: Attributes["user"], namespace: string): { rules: PolicyRule[]; error?: string } {
  const rules: PolicyRule[] = [];
  const errors: string[] = [];
  visitRulesFor(objs, user, namespace, (_src, rule, error) => {
    if (rule) rules.push(rule);
    if (error) errors.push(error);
    return true;
  });
  return errors.length ? { rules, error: aggregateText(errors) } : { rules };
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
