/**
 * Defaulting of the built-in types the stand-in serves, as the real server's
 * `SetDefaults_*` functions (k8s.io/kubernetes/pkg/apis/{apps,core}/v1) fill
 * them in on every write. Controllers must cope with these fields appearing
 * (an apply that compares naively would see drift forever), so the stand-in
 * adds them too.
 */
import { isObj, type Obj } from "./fields.js";
import type { ResourceType } from "./resources.js";
import { initialPodStatus } from "./workloads/pods.js";
import { defaultRbacObject } from "./auth/rbac-objects.js";

const setDefault = (o: Obj, k: string, v: unknown): void => {
  if (o[k] === undefined || o[k] === null) o[k] = v;
};
const objAt = (o: Obj, k: string): Obj => {
  if (!isObj(o[k])) o[k] = {};
  return o[k] as Obj;
};

/** Fills in the defaults of `obj` (in place) for the built-in type `t`; other types are left alone. */
export function applyBuiltinDefaults(t: ResourceType, obj: Obj): void {
  defaultRbacObject(t, obj);
  if (t.group === "apps" && t.kind === "Deployment") defaultDeployment(obj);
  else if (t.group === "apps" && t.kind === "ReplicaSet") {
    const spec = objAt(obj, "spec");
    setDefault(spec, "replicas", 1);
    if (isObj(spec.template)) defaultTemplate(spec.template as Obj);
  } else if (t.group === "" && t.kind === "Pod") {
    if (isObj(obj.spec)) defaultPodSpec(obj.spec as Obj);
    // The pod strategy's PrepareForCreate: a new pod is Pending, whatever status the client sent.
    if (!isObj(obj.status) || obj.status.phase === undefined) obj.status = { ...(isObj(obj.status) ? obj.status : {}), ...initialPodStatus(obj) };
  }
  else if (t.group === "" && t.kind === "Secret") {
    setDefault(obj, "type", "Opaque");
    // stringData is write-only: the Secret conversion merges it into data (base64), over keys data already has.
    if (isObj(obj.stringData)) {
      const data = objAt(obj, "data");
      for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v), "utf8").toString("base64");
    }
    delete obj.stringData;
  }
  else if (t.group === "" && t.kind === "Namespace") {
    setDefault(objAt(obj, "spec"), "finalizers", ["kubernetes"]);
    setDefault(objAt(obj, "status"), "phase", "Active");
  }
}

function defaultDeployment(d: Obj): void {
  const spec = objAt(d, "spec");
  setDefault(spec, "replicas", 1);
  const strategy = objAt(spec, "strategy");
  setDefault(strategy, "type", "RollingUpdate");
  if (strategy.type === "RollingUpdate") {
    const ru = objAt(strategy, "rollingUpdate");
    setDefault(ru, "maxUnavailable", "25%");
    setDefault(ru, "maxSurge", "25%");
  }
  setDefault(spec, "revisionHistoryLimit", 10);
  setDefault(spec, "progressDeadlineSeconds", 600);
  if (isObj(spec.template)) defaultTemplate(spec.template as Obj);
}

function defaultTemplate(template: Obj): void {
  // Go serializes the template's zero creationTimestamp as null; clients see it, so it is part of the answer.
  const tm = objAt(template, "metadata");
  if (!("creationTimestamp" in tm)) tm.creationTimestamp = null;
  if (isObj(template.spec)) defaultPodSpec(template.spec as Obj);
}

function defaultPodSpec(p: Obj): void {
  setDefault(p, "restartPolicy", "Always");
  setDefault(p, "terminationGracePeriodSeconds", 30);
  setDefault(p, "dnsPolicy", "ClusterFirst");
  setDefault(p, "securityContext", {});
  setDefault(p, "schedulerName", "default-scheduler");
  if (typeof p.serviceAccountName === "string" && p.serviceAccount === undefined) p.serviceAccount = p.serviceAccountName;
  for (const list of ["containers", "initContainers"]) {
    for (const c of (Array.isArray(p[list]) ? (p[list] as unknown[]) : []).filter(isObj)) defaultContainer(c);
  }
  for (const v of (Array.isArray(p.volumes) ? (p.volumes as unknown[]) : []).filter(isObj)) {
    if (isObj(v.secret)) setDefault(v.secret as Obj, "defaultMode", 420);
    if (isObj(v.configMap)) setDefault(v.configMap as Obj, "defaultMode", 420);
  }
}

function defaultContainer(c: Obj): void {
  setDefault(c, "resources", {});
  setDefault(c, "terminationMessagePath", "/dev/termination-log");
  setDefault(c, "terminationMessagePolicy", "File");
  // `:latest` or no tag at all means the image moves, so the kubelet must always pull it.
  const image = typeof c.image === "string" ? c.image : "";
  const tag = /@/.test(image) ? "digest" : (/:([^/:]+)$/.exec(image)?.[1] ?? "");
  setDefault(c, "imagePullPolicy", tag === "" || tag === "latest" ? "Always" : "IfNotPresent");
  for (const port of (Array.isArray(c.ports) ? (c.ports as unknown[]) : []).filter(isObj)) setDefault(port, "protocol", "TCP");
  for (const e of (Array.isArray(c.env) ? (c.env as unknown[]) : []).filter(isObj)) {
    const ref = isObj(e.valueFrom) && isObj((e.valueFrom as Obj).fieldRef) ? ((e.valueFrom as Obj).fieldRef as Obj) : undefined;
    if (ref) setDefault(ref, "apiVersion", "v1");
  }
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    if (!isObj(c[probe])) continue;
    const pr = c[probe] as Obj;
    setDefault(pr, "timeoutSeconds", 1);
    setDefault(pr, "periodSeconds", 10);
    setDefault(pr, "successThreshold", 1);
    setDefault(pr, "failureThreshold", 3);
    if (isObj(pr.httpGet)) setDefault(pr.httpGet as Obj, "scheme", "HTTP");
  }
}
