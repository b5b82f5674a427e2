/**
 * Which pods a ReplicaSet deletes first when it scales down, as the real
 * ReplicaSet controller picks them.
 */
import type { Obj } from "../fields.js";

/** The annotation a user (or Offload's autoscaler) sets to steer which pods go first. */
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

/** The pod's deletion cost: the annotation as an int32, 0 when absent or invalid. */
export function deletionCost(pod: Obj): number {
  void pod;
  return 0;
}

/** Whether the pod's `Ready` condition is `True`. */
export function isPodReady(pod: Obj): boolean {
  void pod;
  return false;
}

/**
 * The `count` pods to delete of `pods` (the ReplicaSet's active pods), in
 * the controller's order; `related` are the active pods of the ReplicaSet's
 * siblings (same Deployment), which count for the co-location rank.
 */
export function podsToDelete(pods: readonly Obj[], count: number, related: readonly Obj[] = pods, now: Date = new Date()): Obj[] {
  void related;
  void now;
  return pods.slice(0, count);
}
