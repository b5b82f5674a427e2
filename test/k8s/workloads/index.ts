/**
 * Workloads in the Kubernetes stand-in: what kube-controller-manager's
 * Deployment and ReplicaSet controllers, the scheduler and a kubelet do,
 * run in-process against the stand-in's own write paths (so watches,
 * resourceVersions, managedFields, owner references and the garbage
 * collector behave as for any client). Opt-in:
 * `startFakeKube({ workloads: true | WorkloadOptions })` or
 * `fake.startWorkloads(opts)`; without it a Deployment is only stored, as
 * before (tests that patch its status by hand keep working).
 *
 * Modelled:
 * - Deployment → ReplicaSet `<deploy>-<pod-template-hash>` (owner reference
 *   `controller: true`, label `pod-template-hash`, annotations
 *   `deployment.kubernetes.io/revision`, `desired-replicas`, `max-replicas`);
 *   `spec.replicas` (also through the scale subresource) scales the current
 *   ReplicaSet; a template change makes a new ReplicaSet and rolls to it with
 *   RollingUpdate's maxSurge / maxUnavailable, or Recreate (old ones to 0,
 *   the new one once their pods are gone); old ReplicaSets beyond
 *   `revisionHistoryLimit` are deleted; status (`replicas`, `updatedReplicas`,
 *   `readyReplicas`, `availableReplicas`, `unavailableReplicas`,
 *   `observedGeneration`, conditions `Available` and `Progressing`).
 * - ReplicaSet → Pods `<rs>-<5 chars>` from its template, owner reference to
 *   the ReplicaSet; Terminating and finished (Succeeded/Failed) pods are not
 *   counted, so a replacement is made while a deleted pod still drains;
 *   scale-down picks victims in the ReplicaSet controller's order
 *   (`ranking.ts`: unassigned, phase, readiness, pod-deletion-cost,
 *   co-location, time ready, restarts, age); pods that failed to start slow
 *   their replacements down (backoff from 0.5 s to 30 s).
 * - Pods: bound to one node (`nodeName`, default `fake-node`) by the
 *   "scheduler", given a life by the "kubelet" (`kubelet.ts`): Running and
 *   Ready at once, or through a {@link KubeletHook}; `Workloads.setReady`
 *   plays a readiness probe's verdict. Deleting a bound pod is graceful as on
 *   the real server: `deletionTimestamp` and `deletionGracePeriodSeconds`
 *   (the delete's `gracePeriodSeconds`, else `terminationGracePeriodSeconds`,
 *   default 30) are set, and the pod stays (Terminating) until the kubelet
 *   has stopped it and deletes it with grace 0. A pod deleted at once
 *   (unbound, finished, or `--grace-period=0 --force`) still has its life
 *   stopped (grace 0).
 * - Events: ScalingReplicaSet, SuccessfulCreate / SuccessfulDelete, Started,
 *   Killing, Failed (core/v1) and Scheduled (events.k8s.io/v1).
 * - What kubectl prints: `kubectl get pods|deploy|rs` (and `-w`, `-o wide`)
 *   show the real columns, from the server's Tables (`../tables.ts`).
 *
 * Not modelled: minReadySeconds (ready counts as available at once),
 * progressDeadlineSeconds (Progressing never turns False), paused
 * Deployments (left alone entirely), proportional scaling of several active
 * ReplicaSets in the middle of a rollout (the rollout logic settles them
 * instead), adoption and release of pods or ReplicaSets by label selector
 * (only controller owner references count), more than one node (so the
 * "co-located pods" rank of the victim order is the same for every pod),
 * container restarts (a failed start makes the pod Failed), pod spec
 * immutability and the binding subresource (the scheduler patches
 * `spec.nodeName`), informer lag (every controller sees the store as it is, so a pod annotated
 * just before a scale-down is always ranked with its new cost, where a real
 * controller's cache may be a moment behind), the exact pod-template-hash
 * value (ours is an FNV-1a hash of the template's canonical JSON, encoded as
 * the real one is).
 */
import type { Obj } from "../fields.js";

/**
 * Gives pods a life (e.g. a real worker process per pod). The stand-in's
 * kubelet calls it; a hook that throws or rejects never takes the stand-in
 * down: a failed `start` marks the pod Failed with the error's message, a
 * failed `stop` is logged to stderr and the pod is removed anyway.
 */
export interface KubeletHook {
  /**
   * Called once the pod is bound to the node (`spec.nodeName` set), with the
   * pod as stored. While it runs the pod is `Running` but not Ready (as a
   * container whose readiness probe has not passed yet); when it resolves the
   * pod turns Ready. May still be running when `stop` is called.
   */
  start(pod: Obj): Promise<void> | void;
  /**
   * Called once when the pod is deleted (it then has `deletionTimestamp`),
   * with the grace period to honour (the delete's `gracePeriodSeconds`, else
   * the pod's `terminationGracePeriodSeconds`, default 30; 0 when the
   * stand-in closes). The pod object stays, Terminating, until this settles,
   * then the kubelet deletes it for good.
   */
  stop(pod: Obj, graceSeconds: number): Promise<void>;
}

export interface WorkloadOptions {
  /** What a pod's life is; without it a pod is Running and Ready as soon as it is bound. */
  kubelet?: KubeletHook;
  /** The one node every pod is bound to. Default `fake-node`. */
  nodeName?: string;
}

export { Workloads } from "./controller.js";
export { podsToDelete, deletionCost, isPodReady } from "./ranking.js";
export { podTemplateHash } from "./deployments.js";
export { podDeletionGrace } from "./pods.js";
