/**
 * The Events the real components record as they work, so that `kubectl
 * describe` and `kubectl get events` show a workload's story: the
 * Deployment controller's ScalingReplicaSet, the ReplicaSet controller's
 * SuccessfulCreate / SuccessfulDelete, the kubelet's Started / Killing /
 * Failed (core/v1 Events, as client-go's record.EventRecorder writes them)
 * and the scheduler's Scheduled (events.k8s.io/v1, as its new recorder does).
 */
import { isObj, type Obj } from "../fields.js";
import type { FakeKube } from "../server.js";
import { timestamp } from "./pods.js";

const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});

let sequence = 0n;
/** `<object>.<hex of the time in nanoseconds>`, as the recorder names Events (made unique within this process). */
const eventName = (involved: Obj): string => `${String(metaOf(involved).name)}.${(BigInt(Date.now()) * 1_000_000n + sequence++).toString(16)}`;

const reference = (o: Obj): Obj => {
  const m = metaOf(o);
  return { apiVersion: o.apiVersion, kind: o.kind, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion };
};

/** Events are best effort, as with the real recorder: one that cannot be written is reported, never thrown. */
function bestEffort(write: () => void): void {
  try {
    write();
  } catch (err) {
    process.stderr.write(`${JSON.stringify({ msg: "k8s stand-in workloads: an Event could not be recorded", err: err instanceof Error ? err.message : String(err) })}\n`);
  }
}

/** A core/v1 Event about `involved` from `component` (e.g. `deployment-controller`; `host` for the kubelet's node). */
export function recordEvent(kube: FakeKube, involved: Obj, type: "Normal" | "Warning", reason: string, message: string, component: string, host?: string): void {
  const time = timestamp();
  bestEffort(() => kube.create(
    {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: eventName(involved), namespace: metaOf(involved).namespace },
      involvedObject: reference(involved),
      reason,
      message,
      source: { component, ...(host ? { host } : {}) },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: component,
      reportingInstance: host ?? "",
    },
    component,
  ));
}

/** The scheduler's Scheduled Event (events.k8s.io/v1) for a pod bound to `node`. */
export function recordScheduled(kube: FakeKube, pod: Obj, node: string): void {
  const m = metaOf(pod);
  bestEffort(() => kube.create(
    {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name: eventName(pod), namespace: m.namespace },
      eventTime: new Date().toISOString().replace("Z", "000Z"),
      reportingController: "default-scheduler",
      reportingInstance: `default-scheduler-${node}`,
      action: "Binding",
      reason: "Scheduled",
      regarding: reference(pod),
      note: `Successfully assigned ${String(m.namespace)}/${String(m.name)} to ${node}`,
      type: "Normal",
    },
    "kube-scheduler",
  ));
}
