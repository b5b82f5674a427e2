/**
 * The checks of k8s.io/kubernetes/pkg/apis/apps/validation that a Deployment
 * writer (our controller) can trip: a selector is required, must match the
 * template's labels and cannot change; the template needs containers with a
 * name and an image. Other built-in types are not checked.
 */
import { deepEqual, isObj, type Obj } from "./fields.js";
import type { ResourceType } from "./resources.js";
import type { StatusCause } from "./schema/index.js";

const cause = (field: string, reason: string, message: string): StatusCause => ({ field, reason, message });

/** The causes a write of a built-in object earns (none when it is fine); `old` is the stored object on update. */
export function builtinCauses(t: ResourceType, obj: Obj, old: Obj | undefined): StatusCause[] {
  if (t.group === "apps" && t.kind === "Deployment") return deploymentCauses(obj, old);
  return [];
}

function goMap(m: Record<string, unknown>): string {
  return `map[string]string{${Object.keys(m)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(m[k])}`)
    .join(", ")}}`;
}

function deploymentCauses(d: Obj, old: Obj | undefined): StatusCause[] {
  const out: StatusCause[] = [];
  const spec = isObj(d.spec) ? d.spec : {};
  const selector = isObj(spec.selector) ? spec.selector : undefined;
  const matchLabels = selector && isObj(selector.matchLabels) ? (selector.matchLabels as Record<string, unknown>) : {};
  const template = isObj(spec.template) ? spec.template : {};
  const labels = isObj(template.metadata) && isObj(template.metadata.labels) ? (template.metadata.labels as Record<string, unknown>) : {};
  if (!selector || (Object.keys(matchLabels).length === 0 && !(Array.isArray(selector.matchExpressions) && selector.matchExpressions.length))) {
    out.push(cause("spec.selector", "FieldValueRequired", "Required value"));
  } else if (Object.entries(matchLabels).some(([k, v]) => labels[k] !== v)) {
    out.push(cause("spec.template.metadata.labels", "FieldValueInvalid", `Invalid value: ${goMap(labels)}: \`selector\` does not match template \`labels\``));
  }
  const pod = isObj(template.spec) ? template.spec : {};
  const containers = Array.isArray(pod.containers) ? (pod.containers as unknown[]) : [];
  if (containers.length === 0) out.push(cause("spec.template.spec.containers", "FieldValueRequired", "Required value"));
  containers.forEach((c, i) => {
    const ct = isObj(c) ? c : {};
    if (!ct.name) out.push(cause(`spec.template.spec.containers[${i}].name`, "FieldValueRequired", "Required value"));
    if (!ct.image) out.push(cause(`spec.template.spec.containers[${i}].image`, "FieldValueRequired", "Required value"));
  });
  if (typeof spec.replicas === "number" && spec.replicas < 0) out.push(cause("spec.replicas", "FieldValueInvalid", `Invalid value: ${spec.replicas}: must be greater than or equal to 0`));
  const oldSelector = old && isObj(old.spec) ? (old.spec as Obj).selector : undefined;
  if (old && selector && oldSelector !== undefined && !deepEqual(oldSelector, selector)) {
    out.push(cause("spec.selector", "FieldValueInvalid", `Invalid value: ${JSON.stringify(selector)}: field is immutable`));
  }
  return out;
}
