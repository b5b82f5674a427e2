/**
 * Validation of the built-in types that our controller writes, as the real
 * server does it: Deployments (k8s.io/kubernetes/pkg/apis/apps/validation: a
 * selector is required, must match the template's labels and cannot change;
 * containers need a name and an image) and Events
 * (pkg/apis/core/validation/events.go: events.k8s.io/v1 ones strictly, core/v1
 * ones as legacy), the keys of Secrets and ConfigMaps, and Lease durations;
 * the RBAC objects in auth/rbac-objects.ts. Other built-in types are not checked.
 */
import { deepEqual, isObj, type Obj } from "./fields.js";
import type { ResourceType } from "./resources.js";
import type { StatusCause } from "./schema/index.js";
import { rbacCauses } from "./auth/rbac-objects.js";

const cause = (field: string, reason: string, message: string): StatusCause => ({ field, reason, message });

/** The causes a write of a built-in object earns (none when it is fine); `old` is the stored object on update. */
export function builtinCauses(t: ResourceType, obj: Obj, old: Obj | undefined): StatusCause[] {
  if (t.group === "apps" && t.kind === "Deployment") return deploymentCauses(obj, old);
  if (t.group === "" && (t.kind === "Secret" || t.kind === "ConfigMap")) return dataKeyCauses(obj);
  if (t.group === "coordination.k8s.io" && t.kind === "Lease") return leaseCauses(obj);
  if (t.group === "rbac.authorization.k8s.io") return rbacCauses(t, obj, old);
  if (t.kind === "Event") return eventCauses(internalEvent(t, obj), old ? internalEvent(t, old) : undefined, t.group === "events.k8s.io");
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

/** An Event in the field names of the internal type (which the real server's messages use), from either API version. */
interface InternalEvent {
  namespace: string;
  involvedObject: Obj;
  reason: unknown;
  message: unknown;
  source: unknown;
  firstTimestamp: unknown;
  lastTimestamp: unknown;
  count: unknown;
  type: unknown;
  eventTime: unknown;
  series: unknown;
  action: unknown;
  related: unknown;
  reportingController: unknown;
  reportingInstance: unknown;
}

function internalEvent(t: ResourceType, e: Obj): InternalEvent {
  const m = isObj(e.metadata) ? e.metadata : {};
  const v1 = t.group === "events.k8s.io";
  const ref = v1 ? e.regarding : e.involvedObject;
  return {
    namespace: typeof m.namespace === "string" ? m.namespace : "",
    involvedObject: isObj(ref) ? ref : {},
    reason: e.reason,
    message: v1 ? e.note : e.message,
    source: v1 ? e.deprecatedSource : e.source,
    firstTimestamp: v1 ? e.deprecatedFirstTimestamp : e.firstTimestamp,
    lastTimestamp: v1 ? e.deprecatedLastTimestamp : e.lastTimestamp,
    count: v1 ? e.deprecatedCount : e.count,
    type: e.type,
    eventTime: e.eventTime,
    series: e.series,
    action: e.action,
    related: e.related,
    reportingController: v1 ? e.reportingController : e.reportingComponent,
    reportingInstance: e.reportingInstance,
  };
}

const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const present = (v: unknown): boolean => v !== undefined && v !== null && v !== "" && v !== 0;

function eventCauses(e: InternalEvent, old: InternalEvent | undefined, strict: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const invalidAt = (field: string, value: unknown, detail: string): void => void out.push(cause(field, "FieldValueInvalid", `Invalid value: ${JSON.stringify(value ?? "")}: ${detail}`));
  const required = (field: string): void => void out.push(cause(field, "FieldValueRequired", "Required value"));
  const refNs = str(e.involvedObject.namespace);
  // legacyValidateEvent: every Event, whichever API wrote it.
  if (!present(e.eventTime)) {
    if (refNs ? e.namespace !== refNs : e.namespace !== "" && e.namespace !== "default") invalidAt("involvedObject.namespace", refNs, "does not match event.namespace");
  } else {
    if (!refNs && e.namespace !== "default" && e.namespace !== "kube-system") invalidAt("involvedObject.namespace", refNs, "does not match event.namespace");
    if (!str(e.reportingController)) required("reportingController");
    else if (!QUALIFIED_NAME.test(str(e.reportingController)) || str(e.reportingController).length > 316) invalidAt("reportingController", e.reportingController, "must be a qualified name");
    if (!str(e.reportingInstance)) required("reportingInstance");
    else if (str(e.reportingInstance).length > 128) invalidAt("reportingInstance", "", "can have at most 128 characters");
    if (!str(e.action)) required("action");
    else if (str(e.action).length > 128) invalidAt("action", "", "can have at most 128 characters");
    if (!str(e.reason)) required("reason");
    else if (str(e.reason).length > 128) invalidAt("reason", "", "can have at most 128 characters");
    if (str(e.message).length > 1024) invalidAt("message", "", "can have at most 1024 characters");
  }
  if (!strict) return out;
  // events.k8s.io/v1: strict on create, and only the series may change on update.
  const series = isObj(e.series) ? e.series : undefined;
  const checkSeries = (): void => {
    if (!series) return;
    if (typeof series.count !== "number" || series.count < 2) invalidAt("series.count", "", "should be at least 2");
    if (!present(series.lastObservedTime)) required("series.lastObservedTime");
  };
  if (!old) {
    checkSeries();
    if (!present(e.eventTime)) required("eventTime");
    if (e.type !== "Normal" && e.type !== "Warning") invalidAt("type", "", `has invalid value: ${str(e.type)}`);
    for (const f of ["firstTimestamp", "lastTimestamp", "count"] as const) if (present(e[f])) invalidAt(f, "", "needs to be unset");
    if (isObj(e.source) && (e.source.component || e.source.host)) invalidAt("source", "", "needs to be unset");
    return out;
  }
  if (!deepEqual(e.series, old.series)) checkSeries();
  const immutable = ["involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type", "eventTime", "action", "related", "reportingController", "reportingInstance"] as const;
  for (const f of immutable) if (!deepEqual(e[f], old[f])) invalidAt(f, e[f], "field is immutable");
  return out;
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Secret and ConfigMap keys must be valid config keys (ValidateSecret / ValidateConfigMap). */
function dataKeyCauses(o: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  for (const field of ["data", "binaryData"]) {
    if (!isObj(o[field])) continue;
    for (const k of Object.keys(o[field])) {
      if (!CONFIG_KEY.test(k) || k.length > 253 || k === "." || k === "..") {
        out.push(cause(`${field}[${k}]`, "FieldValueInvalid", `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'`));
      }
    }
  }
  return out;
}

/** ValidateLeaseSpec: a duration, if set, is positive; transitions are not negative. */
function leaseCauses(o: Obj): StatusCause[] {
  const spec = isObj(o.spec) ? o.spec : {};
  const out: StatusCause[] = [];
  if (typeof spec.leaseDurationSeconds === "number" && spec.leaseDurationSeconds <= 0) out.push(cause("spec.leaseDurationSeconds", "FieldValueInvalid", `Invalid value: ${spec.leaseDurationSeconds}: must be greater than 0`));
  if (typeof spec.leaseTransitions === "number" && spec.leaseTransitions < 0) out.push(cause("spec.leaseTransitions", "FieldValueInvalid", `Invalid value: ${spec.leaseTransitions}: must be greater than or equal to 0`));
  return out;
}
