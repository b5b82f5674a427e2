/**
 * The Deployment controller (pkg/controller/deployment: sync.go, rolling.go,
 * recreate.go, progress.go, util/deployment_util.go): a ReplicaSet per pod
 * template, named `<deployment>-<pod-template-hash>`; `spec.replicas` scales
 * the current one; a new template rolls from the old ReplicaSets to a new one
 * (RollingUpdate within maxSurge / maxUnavailable, or Recreate); status and
 * the Available / Progressing conditions follow the ReplicaSets.
 */
import { clone, deepEqual, isObj, type Obj } from "../fields.js";
import { HttpError } from "../http.js";
import { CONTROLLER_MANAGER, controllerOf, controllerRef, metaOf, nameOf, omitEmpty, podsOf, specOf, statusOf, uidOf, type ControllerDeps } from "./replicasets.js";
import { timestamp } from "./pods.js";
import { recordEvent } from "./events.js";

const HASH_LABEL = "pod-template-hash";
const REVISION = "deployment.kubernetes.io/revision";
const DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS = "deployment.kubernetes.io/max-replicas";
/** Annotations of a Deployment not copied to its ReplicaSets (deployment_util.go skipCopyAnnotation). */
const NOT_COPIED = new Set(["kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history", DESIRED_REPLICAS, MAX_REPLICAS, "kubernetes.io/change-cause"]);

/** The characters rand.SafeEncodeString maps to (no vowels, no look-alikes), as in generated names. */
export const SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** JSON with object keys sorted, so that equal templates hash equally whatever order their fields came in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The `pod-template-hash` of a Deployment's template, made as
 * controller.ComputeHash makes it (FNV-1a 32 of the template, then of the
 * collision count as 8 little-endian bytes if there is one, the decimal
 * digits encoded by rand.SafeEncodeString), except that the template is
 * hashed as canonical JSON, not as Go's spew dump: the value differs from a
 * real cluster's, its shape and its stability do not.
 */
export function podTemplateHash(template: Obj, collisionCount?: number): string {
  const text = new TextEncoder().encode(canonical(template));
  const bytes = collisionCount === undefined ? text : new Uint8Array([...text, collisionCount & 0xff, (collisionCount >>> 8) & 0xff, (collisionCount >>> 16) & 0xff, (collisionCount >>> 24) & 0xff, 0, 0, 0, 0]);
  return [...String(fnv1a32(bytes))].map((c) => SAFE_ALPHANUMS[c.charCodeAt(0) % SAFE_ALPHANUMS.length]).join("");
}

const templateOf = (o: Obj): Obj => (isObj(specOf(o).template) ? (specOf(o).template as Obj) : {});
const replicasOf = (o: Obj): number => (typeof specOf(o).replicas === "number" ? (specOf(o).replicas as number) : 1);
const statusNum = (o: Obj, k: string): number => (typeof statusOf(o)[k] === "number" ? (statusOf(o)[k] as number) : 0);
const annotationsOf = (o: Obj): Record<string, string> => (isObj(metaOf(o).annotations) ? (metaOf(o).annotations as Record<string, string>) : {});
const revisionOf = (o: Obj): number => Number(annotationsOf(o)[REVISION] ?? 0) || 0;

/** The template without the hash label (EqualIgnoreHash compares templates so). */
function withoutHash(template: Obj): Obj {
  const t = clone(template);
  const labels = isObj(metaOf(t).labels) ? (metaOf(t).labels as Obj) : undefined;
  if (labels) {
    delete labels[HASH_LABEL];
    if (Object.keys(labels).length === 0) delete metaOf(t).labels;
  }
  return t;
}

/** An int-or-percent of `total` (intstr.GetScaledValueFromIntOrPercent). */
function scaled(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === "number") return v;
  const m = typeof v === "string" ? /^(\d+)%$/.exec(v) : null;
  if (!m) return 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

/** maxSurge and maxUnavailable as numbers of pods (ResolveFenceposts, MaxUnavailable, MaxSurge). */
function fenceposts(d: Obj): { maxSurge: number; maxUnavailable: number } {
  const strategy = isObj(specOf(d).strategy) ? (specOf(d).strategy as Obj) : {};
  if (strategy.type === "Recreate") return { maxSurge: 0, maxUnavailable: 0 };
  const ru = isObj(strategy.rollingUpdate) ? (strategy.rollingUpdate as Obj) : {};
  const replicas = replicasOf(d);
  const maxSurge = scaled(ru.maxSurge ?? "25%", replicas, true);
  let maxUnavailable = scaled(ru.maxUnavailable ?? "25%", replicas, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: replicas === 0 ? 0 : Math.min(maxUnavailable, replicas) };
}

const byCreation = (a: Obj, b: Obj): number => {
  const ta = String(metaOf(a).creationTimestamp ?? "");
  const tb = String(metaOf(b).creationTimestamp ?? "");
  return ta === tb ? nameOf(a).localeCompare(nameOf(b)) : ta < tb ? -1 : 1;
};

/** A deployment condition as SetDeploymentCondition writes it: same status and reason, no change; same status, same transition time. */
function setCondition(conditions: Obj[], type: string, status: boolean, reason: string, message: string, force = false): Obj[] {
  const s = status ? "True" : "False";
  const cur = conditions.find((c) => c.type === type);
  if (!force && cur && cur.status === s && cur.reason === reason) return conditions;
  const time = timestamp();
  const next = { type, status: s, lastUpdateTime: time, lastTransitionTime: cur && cur.status === s ? cur.lastTransitionTime : time, reason, message };
  return [...conditions.filter((c) => c.type !== type), next];
}

export class DeploymentController {
  readonly #deps: ControllerDeps;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
  }

  sync(namespace: string, name: string): void {
    const { kube } = this.#deps;
    const d = kube.get("deployments", namespace, name);
    if (!d || metaOf(d).deletionTimestamp !== undefined) return;
    if (specOf(d).paused === true) return;
    const all = kube
      .list("replicasets", namespace)
      .filter((rs) => controllerOf(rs)?.uid === uidOf(d))
      .sort(byCreation);
    const template = templateOf(d);
    let newRS = all.find((rs) => deepEqual(withoutHash(templateOf(rs)), withoutHash(template)));
    let olds = all.filter((rs) => rs !== newRS);
    const replicas = replicasOf(d);
    const { maxSurge } = fenceposts(d);
    const newRevision = Math.max(0, ...olds.map(revisionOf)) + 1;
    let created = false;
    const recreate = isObj(specOf(d).strategy) && (specOf(d).strategy as Obj).type === "Recreate";

    if (recreate) {
      olds = olds.map((rs) => (replicasOf(rs) > 0 ? this.#scale(d, rs, 0, maxSurge) : rs));
      // Old pods still running (terminating ones included) hold the new ReplicaSet back (recreate.go oldPodsRunning).
      const running = olds.some((rs) => statusNum(rs, "replicas") > 0 || podsOf(kube, namespace, rs).some((p) => !["Failed", "Succeeded"].includes(String(statusOf(p).phase))));
      if (!running) {
        if (!newRS) {
          newRS = this.#create(d, replicas, newRevision, maxSurge);
          created = newRS !== undefined;
        } else newRS = this.#scale(d, newRS, replicas, maxSurge);
      }
    } else if (!newRS) {
      newRS = this.#create(d, this.#newReplicas(d, all, undefined), newRevision, maxSurge);
      created = newRS !== undefined;
    } else if (olds.every((rs) => replicasOf(rs) === 0)) {
      newRS = this.#scale(d, newRS, replicas, maxSurge);
    } else {
      ({ newRS, olds } = this.#roll(d, newRS, olds));
    }
    if (newRS && !created && revisionOf(newRS) < newRevision && olds.length) newRS = this.#annotate(newRS, { [REVISION]: String(newRevision) });
    if (newRS) {
      const rev = annotationsOf(newRS)[REVISION];
      if (rev !== undefined && annotationsOf(d)[REVISION] !== rev) kube.patch("deployments", namespace, name, { metadata: { annotations: { [REVISION]: rev } } }, CONTROLLER_MANAGER);
    }
    this.#cleanup(d, olds);
    this.#updateStatus(d, newRS, olds, created);
  }

  /** NewRSNewReplicas for RollingUpdate: the new ReplicaSet grows as far as maxSurge lets it. */
  #newReplicas(d: Obj, all: Obj[], newRS: Obj | undefined): number {
    const replicas = replicasOf(d);
    const { maxSurge } = fenceposts(d);
    const current = all.reduce((n, rs) => n + replicasOf(rs), 0);
    const have = newRS ? replicasOf(newRS) : 0;
    const maxTotal = replicas + maxSurge;
    if (current >= maxTotal) return have;
    return have + Math.min(maxTotal - current, replicas - have);
  }

  /** rolloutRolling: reconcileNewReplicaSet, then reconcileOldReplicaSets (cleanupUnhealthyReplicas, scaleDownOldReplicaSetsForRollingUpdate). */
  #roll(d: Obj, newRSIn: Obj, oldsIn: Obj[]): { newRS: Obj; olds: Obj[] } {
    const replicas = replicasOf(d);
    const { maxSurge, maxUnavailable } = fenceposts(d);
    let newRS = newRSIn;
    let olds = [...oldsIn];
    if (replicasOf(newRS) > replicas) newRS = this.#scale(d, newRS, replicas, maxSurge);
    else if (replicasOf(newRS) < replicas) newRS = this.#scale(d, newRS, this.#newReplicas(d, [newRS, ...olds], newRS), maxSurge);

    if (olds.reduce((n, rs) => n + replicasOf(rs), 0) === 0) return { newRS, olds };
    const allPods = [newRS, ...olds].reduce((n, rs) => n + replicasOf(rs), 0);
    const minAvailable = replicas - maxUnavailable;
    const newUnavailable = replicasOf(newRS) - statusNum(newRS, "availableReplicas");
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return { newRS, olds };
    // Unhealthy old pods go first: they add nothing to availability.
    let cleaned = 0;
    olds = olds.map((rs) => {
      if (cleaned >= maxScaledDown || replicasOf(rs) === 0) return rs;
      const unhealthy = replicasOf(rs) - statusNum(rs, "availableReplicas");
      if (unhealthy <= 0) return rs;
      const down = Math.min(maxScaledDown - cleaned, unhealthy);
      cleaned += down;
      return this.#scale(d, rs, replicasOf(rs) - down, maxSurge);
    });
    const available = [newRS, ...olds].reduce((n, rs) => n + statusNum(rs, "availableReplicas"), 0);
    if (available <= minAvailable) return { newRS, olds };
    const total = available - minAvailable;
    let done = 0;
    olds = olds.map((rs) => {
      if (done >= total || replicasOf(rs) === 0) return rs;
      const down = Math.min(replicasOf(rs), total - done);
      done += down;
      return this.#scale(d, rs, replicasOf(rs) - down, maxSurge);
    });
    return { newRS, olds };
  }

  /** The new ReplicaSet (getNewReplicaSet with createIfNotExisted); a name taken by another template bumps collisionCount. */
  #create(d: Obj, replicas: number, revision: number, maxSurge: number): Obj | undefined {
    const { kube } = this.#deps;
    const ns = String(metaOf(d).namespace);
    const collisionCount = typeof statusOf(d).collisionCount === "number" ? (statusOf(d).collisionCount as number) : undefined;
    const template = clone(templateOf(d));
    const hash = podTemplateHash(template, collisionCount);
    const tm = metaOf(template);
    tm.labels = { ...(isObj(tm.labels) ? tm.labels : {}), [HASH_LABEL]: hash };
    const selector = clone(isObj(specOf(d).selector) ? (specOf(d).selector as Obj) : {});
    selector.matchLabels = { ...(isObj(selector.matchLabels) ? selector.matchLabels : {}), [HASH_LABEL]: hash };
    const annotations = Object.fromEntries(Object.entries(annotationsOf(d)).filter(([k]) => !NOT_COPIED.has(k)));
    const rs: Obj = {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name: `${nameOf(d)}-${hash}`,
        namespace: ns,
        labels: clone(tm.labels),
        annotations: { ...annotations, [REVISION]: String(revision), [DESIRED_REPLICAS]: String(replicasOf(d)), [MAX_REPLICAS]: String(replicasOf(d) + maxSurge) },
        ownerReferences: [controllerRef(d, "apps/v1", "Deployment")],
      },
      spec: { replicas, minReadySeconds: specOf(d).minReadySeconds ?? 0, selector, template },
    };
    try {
      const created = kube.create(rs, CONTROLLER_MANAGER);
      if (replicas > 0) recordEvent(kube, d, "Normal", "ScalingReplicaSet", `Scaled up replica set ${nameOf(created)} from 0 to ${replicas}`, "deployment-controller");
      return created;
    } catch (err) {
      if (!(err instanceof HttpError && err.code === 409)) throw err;
      // Taken: ours with the same template is fine (found next sync); else hash again with a higher collision count.
      const other = kube.get("replicasets", ns, String(metaOf(rs).name));
      if (other && controllerOf(other)?.uid === uidOf(d) && deepEqual(withoutHash(templateOf(other)), withoutHash(templateOf(d)))) return other;
      kube.patchStatus("deployments", ns, nameOf(d), { collisionCount: (collisionCount ?? 0) + 1 }, CONTROLLER_MANAGER);
      return undefined;
    }
  }

  /** Sets a ReplicaSet's replicas, with the annotations that say what the Deployment wanted then (SetReplicasAnnotations). */
  #scale(d: Obj, rs: Obj, replicas: number, maxSurge: number): Obj {
    const want = { [DESIRED_REPLICAS]: String(replicasOf(d)), [MAX_REPLICAS]: String(replicasOf(d) + maxSurge) };
    const a = annotationsOf(rs);
    const from = replicasOf(rs);
    if (from === replicas && Object.entries(want).every(([k, v]) => a[k] === v)) return rs;
    const scaled = this.#deps.kube.patch("replicasets", String(metaOf(rs).namespace), nameOf(rs), { metadata: { annotations: want }, spec: { replicas } }, CONTROLLER_MANAGER);
    if (from !== replicas) recordEvent(this.#deps.kube, d, "Normal", "ScalingReplicaSet", `Scaled ${from < replicas ? "up" : "down"} replica set ${nameOf(rs)} from ${from} to ${replicas}`, "deployment-controller");
    return scaled;
  }

  #annotate(rs: Obj, annotations: Record<string, string>): Obj {
    return this.#deps.kube.patch("replicasets", String(metaOf(rs).namespace), nameOf(rs), { metadata: { annotations } }, CONTROLLER_MANAGER);
  }

  /** cleanupDeployment: old ReplicaSets scaled to 0 and empty, beyond revisionHistoryLimit, oldest first. */
  #cleanup(d: Obj, olds: Obj[]): void {
    const limit = typeof specOf(d).revisionHistoryLimit === "number" ? (specOf(d).revisionHistoryLimit as number) : 10;
    const idle = olds.filter((rs) => replicasOf(rs) === 0 && statusNum(rs, "replicas") === 0 && metaOf(rs).deletionTimestamp === undefined).sort(byCreation);
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) this.#deps.kube.delete("replicasets", String(metaOf(rs).namespace), nameOf(rs));
  }

  /** calculateStatus + syncRolloutStatus: counts from the ReplicaSets as they are now, and the two conditions. */
  #updateStatus(dIn: Obj, newRSIn: Obj | undefined, oldsIn: Obj[], created: boolean): void {
    const { kube } = this.#deps;
    const ns = String(metaOf(dIn).namespace);
    const d = kube.get("deployments", ns, nameOf(dIn));
    if (!d) return;
    const fresh = (rs: Obj): Obj => kube.get("replicasets", ns, nameOf(rs)) ?? rs;
    const newRS = newRSIn && fresh(newRSIn);
    const all = [...(newRS ? [newRS] : []), ...oldsIn.map(fresh)];
    const replicas = replicasOf(d);
    const sum = (k: string): number => all.reduce((n, rs) => n + statusNum(rs, k), 0);
    const available = sum("availableReplicas");
    const counts: Obj = {
      observedGeneration: metaOf(d).generation,
      replicas: sum("replicas"),
      updatedReplicas: newRS ? statusNum(newRS, "replicas") : 0,
      readyReplicas: sum("readyReplicas"),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, all.reduce((n, rs) => n + replicasOf(rs), 0) - available),
    };
    const prev = statusOf(d);
    let conditions = (Array.isArray(prev.conditions) ? (prev.conditions as unknown[]).filter(isObj) : []).map(clone);
    const rsName = newRS ? nameOf(newRS) : "";
    if (created && newRS) conditions = setCondition(conditions, "Progressing", true, "NewReplicaSetCreated", `Created new replica set "${rsName}"`);
    const { maxUnavailable } = fenceposts(d);
    conditions =
      available >= replicas - maxUnavailable
        ? setCondition(conditions, "Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.")
        : setCondition(conditions, "Available", false, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.");
    const complete = newRS !== undefined && counts.updatedReplicas === replicas && counts.replicas === replicas && available === replicas;
    const progressed = ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"].some((k) => (prev[k] ?? 0) !== counts[k]);
    if (newRS && !created) {
      if (complete) conditions = setCondition(conditions, "Progressing", true, "NewReplicaSetAvailable", `ReplicaSet "${rsName}" has successfully progressed.`);
      else if (!conditions.some((c) => c.type === "Progressing")) conditions = setCondition(conditions, "Progressing", true, "FoundNewReplicaSet", `Found new replica set "${rsName}"`);
      // Progress moves lastUpdateTime even with the same reason (progress.go handles Progressing apart for this).
      else if (progressed) conditions = setCondition(conditions, "Progressing", true, "ReplicaSetUpdated", `ReplicaSet "${rsName}" is progressing.`, true);
    }
    const patch = omitEmpty(prev, { ...counts, conditions });
    if (patch) kube.patchStatus("deployments", ns, nameOf(d), patch, CONTROLLER_MANAGER);
  }
}
