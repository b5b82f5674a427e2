/**
 * Which pods a ReplicaSet deletes first when it scales down, exactly as the
 * real ReplicaSet controller picks them (v1.32, feature gates PodDeletionCost
 * and LogarithmicScaleDown on, their defaults):
 * pkg/controller/replicaset/replica_set.go `getPodsToDelete` and
 * `getPodsRankedByRelatedPodsOnSameNode`, pkg/controller/controller_utils.go
 * `ActivePodsWithRanks.Less`, pkg/apis/core/helper
 * `GetDeletionCostFromPodAnnotations`. Offload's autoscaler relies on this
 * order to spare busy workers, so a test against the stand-in must see the
 * pods the real controller would take.
 */
import { isObj, type Obj } from "../fields.js";

/** The annotation a user (or Offload's autoscaler) sets to steer which pods go first. */
export const DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

const metaOf = (pod: Obj): Obj => (isObj(pod.metadata) ? pod.metadata : {});
const specOf = (pod: Obj): Obj => (isObj(pod.spec) ? pod.spec : {});
const statusOf = (pod: Obj): Obj => (isObj(pod.status) ? pod.status : {});
const nodeOf = (pod: Obj): string => (typeof specOf(pod).nodeName === "string" ? (specOf(pod).nodeName as string) : "");

/**
 * The pod's deletion cost: the annotation as an int32, 0 when absent or
 * invalid. As GetDeletionCostFromPodAnnotations: a leading `+` or a leading
 * zero (other than "0" itself) is invalid, and so is anything strconv.ParseInt
 * (base 10, 32 bits) refuses.
 */
export function deletionCost(pod: Obj): number {
  const annotations = isObj(metaOf(pod).annotations) ? (metaOf(pod).annotations as Obj) : {};
  const value = annotations[DELETION_COST];
  if (typeof value !== "string") return 0;
  const first = value[0];
  const validFirst = first === "-" || value === "0" || (first !== undefined && first >= "1" && first <= "9");
  if (!validFirst || !/^-?[0-9]+$/.test(value)) return 0;
  const n = Number(value);
  return n < INT32_MIN || n > INT32_MAX ? 0 : n;
}

/** The pod's `Ready` condition, if it has one. */
function readyCondition(pod: Obj): Obj | undefined {
  const conditions = statusOf(pod).conditions;
  return Array.isArray(conditions) ? (conditions as unknown[]).filter(isObj).find((c) => c.type === "Ready") : undefined;
}

/** Whether the pod's `Ready` condition is `True` (podutil.IsPodReady). */
export function isPodReady(pod: Obj): boolean {
  return readyCondition(pod)?.status === "True";
}

/** Running and not finished or being deleted (controller.IsPodActive). */
export function isPodActive(pod: Obj): boolean {
  const phase = statusOf(pod).phase;
  return phase !== "Succeeded" && phase !== "Failed" && metaOf(pod).deletionTimestamp === undefined;
}

/** Milliseconds since the epoch, or 0 for Go's zero time (absent). */
const timeOf = (v: unknown): number => (v instanceof Date ? v.getTime() : typeof v === "string" && v ? Date.parse(v) : 0);

/** podReadyTime: when a ready pod turned ready (zero if not ready). */
const readyTime = (pod: Obj): number => (isPodReady(pod) ? timeOf(readyCondition(pod)?.lastTransitionTime) : 0);

const maxRestarts = (pod: Obj): number => {
  const statuses = statusOf(pod).containerStatuses;
  return Array.isArray(statuses) ? Math.max(0, ...(statuses as unknown[]).filter(isObj).map((c) => Number(c.restartCount ?? 0))) : 0;
};

// PodPending < PodUnknown < PodRunning; any other phase is the map's zero value.
const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const phaseOrdinal = (pod: Obj): number => PHASE_ORDINAL[String(statusOf(pod).phase)] ?? 0;

/** afterOrZero: t1 after t2, a zero time counting as after any other. */
const afterOrZero = (t1: number, t2: number): boolean => (t1 === 0 || t2 === 0 ? t1 === 0 : t1 > t2);

/** logarithmicRankDiff: the difference of floor(log2(age in nanoseconds)) of two times (-1 for an age ≤ 0). */
function logarithmicRankDiff(t1: number, t2: number, now: number): number {
  const rank = (t: number): number => {
    const d = (now - t) * 1e6;
    return d > 0 ? Math.floor(Math.log2(d)) : -1;
  };
  return rank(t1) - rank(t2);
}

const uidOf = (pod: Obj): string => String(metaOf(pod).uid ?? "");

/** ActivePodsWithRanks.Less: whether pod `a` (rank `ra`) goes before pod `b` (rank `rb`). */
function less(a: Obj, ra: number, b: Obj, rb: number, now: number): boolean {
  // 1. Unassigned < assigned.
  const na = nodeOf(a);
  const nb = nodeOf(b);
  if (na !== nb && (na === "" || nb === "")) return na === "";
  // 2. Pending < Unknown < Running.
  if (phaseOrdinal(a) !== phaseOrdinal(b)) return phaseOrdinal(a) < phaseOrdinal(b);
  // 3. Not ready < ready.
  if (isPodReady(a) !== isPodReady(b)) return !isPodReady(a);
  // 4. Lower pod-deletion-cost < higher.
  if (deletionCost(a) !== deletionCost(b)) return deletionCost(a) < deletionCost(b);
  // 5. Doubled up (more related pods on the same node) < not doubled up.
  if (ra !== rb) return ra > rb;
  // 6. Ready for less time < more time, on a log2 scale of the time ready, ties broken by UID.
  if (isPodReady(a) && isPodReady(b)) {
    const ta = readyTime(a);
    const tb = readyTime(b);
    if (ta !== tb) {
      if (ta === 0 || tb === 0) return afterOrZero(ta, tb);
      const diff = logarithmicRankDiff(ta, tb, now);
      return diff === 0 ? uidOf(a) < uidOf(b) : diff < 0;
    }
  }
  // 7. More container restarts < fewer.
  if (maxRestarts(a) !== maxRestarts(b)) return maxRestarts(a) > maxRestarts(b);
  // 8. Newer < older, on the same log2 scale, ties broken by UID.
  const ca = timeOf(metaOf(a).creationTimestamp);
  const cb = timeOf(metaOf(b).creationTimestamp);
  if (ca !== cb) {
    if (ca === 0 || cb === 0) return afterOrZero(ca, cb);
    const diff = logarithmicRankDiff(ca, cb, now);
    return diff === 0 ? uidOf(a) < uidOf(b) : diff < 0;
  }
  return false;
}

/**
 * The `count` pods of `pods` (the ReplicaSet's active pods) to delete, first
 * to go first. `related` are the active pods of the ReplicaSet and its
 * siblings under the same Deployment: a pod's rank is how many of them share
 * its node. As getPodsToDelete, nothing is sorted when every pod goes.
 */
export function podsToDelete(pods: readonly Obj[], count: number, related: readonly Obj[] = pods, now: Date = new Date()): Obj[] {
  if (count <= 0) return [];
  if (count >= pods.length) return [...pods];
  const onNode = new Map<string, number>();
  for (const p of related) if (isPodActive(p)) onNode.set(nodeOf(p), (onNode.get(nodeOf(p)) ?? 0) + 1);
  const ranked = pods.map((pod) => ({ pod, rank: onNode.get(nodeOf(pod)) ?? 0 }));
  const t = now.getTime();
  ranked.sort((x, y) => (less(x.pod, x.rank, y.pod, y.rank, t) ? -1 : less(y.pod, y.rank, x.pod, x.rank, t) ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.pod);
}
