import type { TaskWorker, TaskWorkerStatus } from "../crds/schemas.js";
import { mergeConditions, type ConditionUpdate } from "./conditions.js";
import { selectorLabels, selectorString } from "./labels.js";

/** The parts of a Deployment the TaskWorker's status is computed from. */
export interface ObservedDeployment {
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: { type?: string; status?: string; reason?: string; message?: string }[];
  };
}

/** The conditions only an autoscaled TaskWorker has (dropped when `spec.autoscaling` is removed). */
const AUTOSCALING_CONDITIONS = new Set(["ScalingActive", "ScalingLimited"]);

/** What went wrong on the controller's side in this reconcile, if anything. */
export interface ReconcileProblem {
  reason: string;
  message: string;
}

/**
 * The TaskWorker's status from its Deployment (absent before the first
 * apply) and the problem the reconcile hit (if any). Pure.
 */
export function taskWorkerStatus(
  tw: TaskWorker,
  deployment: ObservedDeployment | undefined,
  problem: ReconcileProblem | undefined,
  now: Date,
  backlog?: number,
  autoscaling?: { status: NonNullable<TaskWorkerStatus["autoscaling"]>; conditions: readonly ConditionUpdate[] },
): TaskWorkerStatus {
  const desired = tw.spec.replicas;
  const generation = tw.metadata.generation;
  const ds = deployment?.status ?? {};
  const replicas = ds.replicas ?? 0;
  const ready = ds.readyReplicas ?? 0;
  const updated = ds.updatedReplicas ?? 0;
  const depGen = deployment?.metadata?.generation;
  const depObserved = deployment !== undefined && (depGen === undefined || (ds.observedGeneration ?? 0) >= depGen);
  const rolledOut = deployment !== undefined && depObserved && updated >= desired && replicas === desired && ready >= desired;
  const depFailure = ds.conditions?.find(
    (c) => (c.type === "ReplicaFailure" && c.status === "True") || (c.type === "Progressing" && c.status === "False"),
  );

  const conds: ConditionUpdate[] = [];
  const og = generation !== undefined ? { observedGeneration: generation } : {};
  if (!deployment) {
    conds.push({ type: "Ready", status: "False", reason: problem ? problem.reason : "DeploymentPending", message: problem?.message ?? "the worker Deployment does not exist yet", ...og });
  } else if (desired === 0) {
    conds.push({ type: "Ready", status: "True", reason: "ScaledToZero", message: "no worker pods are wanted", ...og });
  } else if (ready >= desired) {
    conds.push({ type: "Ready", status: "True", reason: "AllReplicasReady", message: `${ready}/${desired} worker pods are ready`, ...og });
  } else {
    conds.push({ type: "Ready", status: "False", reason: "ReplicasNotReady", message: `${ready}/${desired} worker pods are ready`, ...og });
  }
  if (rolledOut || (deployment && desired === 0 && replicas === 0)) {
    conds.push({ type: "Progressing", status: "False", reason: "RolloutComplete", message: "the worker pods match the spec", ...og });
  } else if (problem && !deployment) {
    conds.push({ type: "Progressing", status: "False", reason: problem.reason, message: problem.message, ...og });
  } else {
    conds.push({
      type: "Progressing",
      status: "True",
      reason: deployment ? "RollingOut" : "Creating",
      message: deployment ? `${updated}/${desired} worker pods updated, ${ready} ready` : "creating the worker Deployment",
      ...og,
    });
  }
  if (problem) {
    conds.push({ type: "Degraded", status: "True", reason: problem.reason, message: problem.message, ...og });
  } else if (depFailure) {
    conds.push({
      type: "Degraded",
      status: "True",
      reason: depFailure.reason || "DeploymentFailing",
      message: depFailure.message || `the Deployment reports ${depFailure.type}=${depFailure.status}`,
      ...og,
    });
  } else {
    conds.push({ type: "Degraded", status: "False", reason: "AsExpected", message: "the controller is making what the spec asks for", ...og });
  }

  const status: TaskWorkerStatus = {
    replicas,
    readyReplicas: ready,
    selector: selectorString(selectorLabels(tw.metadata.name)),
    conditions: mergeConditions(
      autoscaling ? tw.status?.conditions : tw.status?.conditions?.filter((c) => !AUTOSCALING_CONDITIONS.has(c.type)),
      autoscaling ? [...conds, ...autoscaling.conditions] : conds,
      now,
    ),
  };
  if (autoscaling) status.autoscaling = autoscaling.status;
  if (generation !== undefined) status.observedGeneration = generation;
  const b = backlog ?? tw.status?.backlog;
  if (b !== undefined) status.backlog = b;
  return status;
}
