/**
 * The ReplicaSet controller (pkg/controller/replicaset/replica_set.go): keeps
 * as many active pods as `spec.replicas` asks for, creating them from the
 * template and, when there are too many, deleting those `podsToDelete` ranks
 * first; and keeps `status` counted from the pods.
 */
import { clone, deepEqual, isObj, type Obj } from "../fields.js";
import type { FakeKube } from "../server.js";
import { isPodActive, isPodReady, podsToDelete } from "./ranking.js";
import { recordEvent } from "./events.js";

/** What the controllers need from the loop around them. */
export interface ControllerDeps {
  kube: FakeKube;
  /** Reports an error that must not take the stand-in down. */
  report(err: unknown, what: string): void;
  /** Syncs the object again after `ms` (a backoff). */
  requeueAfter(resource: "replicasets" | "deployments", namespace: string, name: string, ms: number): void;
}

/** The field manager of every controller in kube-controller-manager (they share its client's user agent). */
export const CONTROLLER_MANAGER = "kube-controller-manager";

/** The most pods one sync creates (the controller's burstReplicas). */
const BURST_REPLICAS = 500;
/** Backoff of pod creation after pods failed to start: doubles from this, up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

export const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});
export const specOf = (o: Obj): Obj => (isObj(o.spec) ? o.spec : {});
export const statusOf = (o: Obj): Obj => (isObj(o.status) ? o.status : {});
export const uidOf = (o: Obj): string => String(metaOf(o).uid ?? "");
export const nameOf = (o: Obj): string => String(metaOf(o).name ?? "");

/** The owner reference with `controller: true`, if any (metav1.GetControllerOf). */
export function controllerOf(o: Obj): Obj | undefined {
  const refs = metaOf(o).ownerReferences;
  return Array.isArray(refs) ? (refs as unknown[]).filter(isObj).find((r) => r.controller === true) : undefined;
}

/** An owner reference that makes `owner` the controller of what carries it (metav1.NewControllerRef). */
export function controllerRef(owner: Obj, apiVersion: string, kind: string): Obj {
  return { apiVersion, kind, name: nameOf(owner), uid: uidOf(owner), controller: true, blockOwnerDeletion: true };
}

/** The pods of namespace `ns` that `owner` controls. */
export function podsOf(kube: FakeKube, ns: string, owner: Obj): Obj[] {
  const uid = uidOf(owner);
  return kube.list("pods", ns).filter((p) => controllerOf(p)?.uid === uid);
}

/** Whether every label of `selectorLabels` is on `o` with the same value. */
const hasLabels = (o: Obj, selectorLabels: Obj): boolean => {
  const labels = isObj(metaOf(o).labels) ? (metaOf(o).labels as Obj) : {};
  return Object.entries(selectorLabels).every(([k, v]) => labels[k] === v);
};

/**
 * The merge patch that makes `cur` hold `next`, with Go's `omitempty`: a 0
 * (other than in `always`) is no field at all. Undefined when nothing changes.
 */
export function omitEmpty(cur: Obj, next: Obj, always: readonly string[] = []): Obj | undefined {
  const patch: Obj = {};
  for (const [k, v] of Object.entries(next)) {
    const want = v === 0 && !always.includes(k) ? undefined : v;
    if (!deepEqual(cur[k], want)) patch[k] = want === undefined ? null : want;
  }
  return Object.keys(patch).length ? patch : undefined;
}

/** The pod a ReplicaSet makes from its template (controller.GetPodFromTemplate). */
function podFromTemplate(rs: Obj): Obj {
  const template = isObj(specOf(rs).template) ? (specOf(rs).template as Obj) : {};
  const tm = metaOf(template);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: `${nameOf(rs)}-`,
      namespace: metaOf(rs).namespace,
      ...(isObj(tm.labels) ? { labels: clone(tm.labels) } : {}),
      ...(isObj(tm.annotations) ? { annotations: clone(tm.annotations) } : {}),
      ...(Array.isArray(tm.finalizers) ? { finalizers: clone(tm.finalizers) } : {}),
      ownerReferences: [controllerRef(rs, "apps/v1", "ReplicaSet")],
    },
    spec: clone(isObj(template.spec) ? template.spec : {}),
  };
}

interface Backoff {
  failures: number;
  until: number;
  /** Failed pods already counted. */
  seen: Set<string>;
}

export class ReplicaSetController {
  readonly #deps: ControllerDeps;
  /** By ReplicaSet uid: pods that failed to start slow down their replacements (else a broken hook would spin). */
  readonly #backoff = new Map<string, Backoff>();

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
  }

  sync(namespace: string, name: string): void {
    const { kube } = this.#deps;
    const rs = kube.get("replicasets", namespace, name);
    if (!rs) return;
    const owned = podsOf(kube, namespace, rs);
    if (metaOf(rs).deletionTimestamp === undefined) this.#manage(rs, owned);
    this.#updateStatus(rs);
  }

  /** Forgets what it kept about a ReplicaSet that is gone. */
  forget(uid: string): void {
    this.#backoff.delete(uid);
  }

  /** manageReplicas: create or delete pods until the active ones are as many as asked for. */
  #manage(rs: Obj, owned: Obj[]): void {
    const { kube } = this.#deps;
    const ns = String(metaOf(rs).namespace);
    const active = owned.filter(isPodActive);
    const desired = typeof specOf(rs).replicas === "number" ? (specOf(rs).replicas as number) : 1;
    const diff = active.length - desired;
    if (diff < 0) {
      const wait = this.#backoffFor(rs, owned, active);
      if (wait > 0) {
        this.#deps.requeueAfter("replicasets", ns, nameOf(rs), wait);
        return;
      }
      for (let i = 0; i < Math.min(-diff, BURST_REPLICAS); i++) {
        const pod = kube.create(podFromTemplate(rs), CONTROLLER_MANAGER);
        recordEvent(kube, rs, "Normal", "SuccessfulCreate", `Created pod: ${nameOf(pod)}`, "replicaset-controller");
      }
    } else if (diff > 0) {
      // The pods of the ReplicaSet's siblings (same Deployment) count for the co-location rank (getIndirectlyRelatedPods).
      const owner = controllerOf(rs);
      const siblings = owner ? kube.list("replicasets", ns).filter((r) => controllerOf(r)?.uid === owner.uid && uidOf(r) !== uidOf(rs)) : [];
      const related = [...active, ...siblings.flatMap((s) => podsOf(kube, ns, s).filter(isPodActive))];
      for (const victim of podsToDelete(active, diff, related)) {
        kube.delete("pods", ns, nameOf(victim));
        recordEvent(kube, rs, "Normal", "SuccessfulDelete", `Deleted pod: ${nameOf(victim)}`, "replicaset-controller");
      }
    }
  }

  /** Milliseconds to wait before creating pods again, after pods of this ReplicaSet failed to start. */
  #backoffFor(rs: Obj, owned: Obj[], active: Obj[]): number {
    const uid = uidOf(rs);
    const b = this.#backoff.get(uid) ?? { failures: 0, until: 0, seen: new Set<string>() };
    this.#backoff.set(uid, b);
    if (active.some(isPodReady)) {
      b.failures = 0;
      b.until = 0;
    }
    for (const p of owned) {
      if (statusOf(p).phase !== "Failed" || b.seen.has(uidOf(p))) continue;
      b.seen.add(uidOf(p));
      b.failures++;
      b.until = Date.now() + Math.min(FIRST_BACKOFF_MS * 2 ** (b.failures - 1), MAX_BACKOFF_MS);
    }
    return Math.max(0, b.until - Date.now());
  }

  /** calculateStatus + updateReplicaSetStatus: counted from the pods as they are after this sync. */
  #updateStatus(rs: Obj): void {
    const { kube } = this.#deps;
    const ns = String(metaOf(rs).namespace);
    const active = podsOf(kube, ns, rs).filter(isPodActive);
    const template = isObj(specOf(rs).template) ? (specOf(rs).template as Obj) : {};
    const templateLabels = isObj(metaOf(template).labels) ? (metaOf(template).labels as Obj) : {};
    const ready = active.filter(isPodReady).length;
    const status: Obj = {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => hasLabels(p, templateLabels)).length,
      readyReplicas: ready,
      // minReadySeconds is not modelled: a ready pod is available at once.
      availableReplicas: ready,
      observedGeneration: metaOf(rs).generation,
    };
    const patch = omitEmpty(statusOf(rs), status, ["replicas"]);
    if (patch) kube.patchStatus("replicasets", ns, nameOf(rs), patch, CONTROLLER_MANAGER);
  }
}
