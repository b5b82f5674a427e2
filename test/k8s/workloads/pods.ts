/**
 * Pods as the API server treats them (graceful deletion, the status a new pod
 * starts with) and the status the kubelet reports for each stage of a pod's
 * life, in the shape a real kubelet (v1.32) writes it.
 */
import { isObj, type Obj } from "../fields.js";

const specOf = (pod: Obj): Obj => (isObj(pod.spec) ? pod.spec : {});
const statusOf = (pod: Obj): Obj => (isObj(pod.status) ? pod.status : {});

/** A timestamp as the API server writes one (RFC 3339, whole seconds). */
export const timestamp = (d: Date = new Date()): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * How long a DELETE of `pod` leaves it Terminating, as the pod strategy's
 * CheckGracefulDelete decides (pkg/registry/core/pod/strategy.go): the
 * delete's `gracePeriodSeconds`, else the pod's
 * `terminationGracePeriodSeconds` (30 by default); 0 (gone at once) for a pod
 * not bound to a node, which no kubelet would ever stop, or already finished;
 * a negative request counts as 1.
 */
export function podDeletionGrace(pod: Obj, requested: number | undefined): number {
  const own = specOf(pod).terminationGracePeriodSeconds;
  let period = requested !== undefined && Number.isFinite(requested) ? requested : typeof own === "number" ? own : 30;
  if (!specOf(pod).nodeName) period = 0;
  const phase = statusOf(pod).phase;
  if (phase === "Failed" || phase === "Succeeded") period = 0;
  return period < 0 ? 1 : Math.floor(period);
}

/**
 * The pod's QoS class (pkg/apis/core/helper/qos): BestEffort without any
 * request or limit, Guaranteed when every container limits cpu and memory
 * and requests (if any) equal the limits, Burstable otherwise.
 */
export function qosClass(pod: Obj): string {
  const containers = [specOf(pod).containers, specOf(pod).initContainers].flatMap((l) => (Array.isArray(l) ? (l as unknown[]).filter(isObj) : []));
  const res = containers.map((c) => (isObj(c.resources) ? c.resources : {}));
  const any = res.some((r) => (isObj(r.requests) && Object.keys(r.requests).length > 0) || (isObj(r.limits) && Object.keys(r.limits).length > 0));
  if (!any) return "BestEffort";
  const guaranteed = res.every((r) => {
    const limits = isObj(r.limits) ? (r.limits as Obj) : {};
    const requests = isObj(r.requests) ? (r.requests as Obj) : {};
    return ["cpu", "memory"].every((k) => limits[k] !== undefined && (requests[k] === undefined || String(requests[k]) === String(limits[k])));
  });
  return guaranteed ? "Guaranteed" : "Burstable";
}

/** What the pod strategy's PrepareForCreate puts in a new pod's status, whatever the client sent. */
export function initialPodStatus(pod: Obj): Obj {
  return { phase: "Pending", qosClass: qosClass(pod) };
}

/** The stages of a pod's life the kubelet reports. */
export type PodStage =
  /** Bound; containers being created. */
  | "creating"
  /** Containers started, not ready yet (a hook's `start` is running, or readiness turned false). */
  | "started"
  /** Running and ready. */
  | "ready"
  /** The containers could not start (a hook's `start` failed). */
  | "failed";

export interface PodStatusInput {
  stage: PodStage;
  podIP: string;
  hostIP: string;
  /** Why the pod failed (stage `failed`). */
  message?: string;
}

const containerNames = (pod: Obj): string[] => {
  const list = specOf(pod).containers;
  return Array.isArray(list) ? (list as unknown[]).filter(isObj).map((c) => String(c.name)) : [];
};

/**
 * The pod's status at `stage`, as the kubelet's status manager writes it
 * (phase, the five conditions, container statuses, IPs). A condition whose
 * status did not change keeps its `lastTransitionTime`, and a running
 * container its `startedAt`, so writing the same stage twice changes nothing.
 */
export function podStatusAt(pod: Obj, input: PodStatusInput): Obj {
  const prev = statusOf(pod);
  const time = timestamp();
  const prevConds = Array.isArray(prev.conditions) ? (prev.conditions as unknown[]).filter(isObj) : [];
  const names = containerNames(pod);
  const notReadyMessage = `containers with unready status: [${names.join(" ")}]`;
  const ready = input.stage === "ready";
  const cond = (type: string, status: boolean, reason?: string, message?: string): Obj => {
    const s = status ? "True" : "False";
    const before = prevConds.find((c) => c.type === type);
    return {
      type,
      status: s,
      lastTransitionTime: before && before.status === s && typeof before.lastTransitionTime === "string" ? before.lastTransitionTime : time,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    };
  };
  const failed = input.stage === "failed";
  const notReadyReason = failed ? "PodFailed" : "ContainersNotReady";
  const conditions = [
    cond("PodReadyToStartContainers", !failed),
    cond("Initialized", true),
    cond("Ready", ready, ready ? undefined : notReadyReason, ready || failed ? undefined : notReadyMessage),
    cond("ContainersReady", ready, ready ? undefined : notReadyReason, ready || failed ? undefined : notReadyMessage),
    cond("PodScheduled", true),
  ];
  const prevContainers = Array.isArray(prev.containerStatuses) ? (prev.containerStatuses as unknown[]).filter(isObj) : [];
  const images = new Map((Array.isArray(specOf(pod).containers) ? (specOf(pod).containers as unknown[]).filter(isObj) : []).map((c) => [String(c.name), String(c.image ?? "")]));
  const containerStatuses = names.map((name) => {
    const before = prevContainers.find((c) => c.name === name);
    const beforeRunning = before && isObj(before.state) && isObj((before.state as Obj).running) ? ((before.state as Obj).running as Obj) : undefined;
    const startedAt = typeof beforeRunning?.startedAt === "string" ? beforeRunning.startedAt : time;
    const state =
      input.stage === "creating"
        ? { waiting: { reason: "ContainerCreating" } }
        : failed
          ? { terminated: { exitCode: 1, reason: "Error", message: input.message ?? "", startedAt, finishedAt: time } }
          : { running: { startedAt } };
    return {
      name,
      image: images.get(name) ?? "",
      imageID: "",
      ...(input.stage === "creating" ? {} : { containerID: `containerd://${name}` }),
      ready,
      restartCount: 0,
      started: input.stage === "started" || ready,
      state,
      lastState: {},
    };
  });
  return {
    phase: failed ? "Failed" : input.stage === "creating" ? "Pending" : "Running",
    ...(failed ? { reason: "StartError", message: input.message ?? "" } : {}),
    conditions,
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    podIP: input.podIP,
    podIPs: [{ ip: input.podIP }],
    startTime: typeof prev.startTime === "string" ? prev.startTime : time,
    containerStatuses,
    qosClass: typeof prev.qosClass === "string" ? prev.qosClass : qosClass(pod),
  };
}
