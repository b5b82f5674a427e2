import type { KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { API_VERSION, TASKWORKER, TaskWorkerSchema, type TaskWorker, type TaskWorkerStatus } from "../crds/schemas.js";
import { jsonEqual, mergeConditions } from "./conditions.js";
import { desiredDeployment, type WorkerDefaults } from "./desired.js";
import type { AutoscaleOutcome, Autoscaler } from "./autoscaler.js";
import type { EventRecorder } from "./events.js";
import { messageOf, type Kube } from "./kube.js";
import { selectorLabels, selectorString } from "./labels.js";
import type { OwnWrites } from "./own-writes.js";
import { RetryableError, type ReconcileResult } from "./result.js";
import { taskWorkerStatus, type ReconcileProblem } from "./status.js";


export interface TaskWorkerDeps {
  kube: Kube;
  events: EventRecorder;
  defaults: WorkerDefaults;
  getTaskWorker(namespace: string, name: string): KubernetesObject | undefined;
  getDeployment(namespace: string, name: string): V1Deployment | undefined;
  /** The controller's own writes the informer caches may not show yet (see own-writes.ts). */
  writes: { taskWorkers: OwnWrites; deployments: OwnWrites };
  /** Runs waiting for a worker across `tasks`, if the run API can tell (best effort). */
  backlog?(tasks: readonly string[] | undefined): Promise<number | undefined>;
  /** Sizes TaskWorkers that have `spec.autoscaling`. */
  autoscaler?: Autoscaler;
  now(): Date;
}

/**
 * Brings one TaskWorker's Deployment to what its spec asks for and writes
 * what it observed into its status. Idempotent: running it twice in a row
 * changes nothing the second time.
 */
export async function reconcileTaskWorker(deps: TaskWorkerDeps, namespace: string, name: string): Promise<ReconcileResult> {
  const raw = deps.writes.taskWorkers.view(deps.getTaskWorker(namespace, name));
  if (!raw || raw.metadata?.deletionTimestamp) {
    deps.autoscaler?.forget(namespace, name);
    deps.writes.taskWorkers.forget(namespace, name);
    deps.writes.deployments.forget(namespace, name);
    return {}; // gone: its Deployment goes by garbage collection
  }
  const parsed = TaskWorkerSchema.safeParse(raw);
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await writeInvalid(deps, raw, message);
    return {};
  }
  // The autoscaler first: a new size goes to the Deployment in this same reconcile (from zero, every
  // round trip counts), not only when the scale write comes back through the informer.
  const auto: AutoscaleOutcome | undefined = await deps.autoscaler?.step(parsed.data);
  const tw = auto && auto.replicas !== parsed.data.spec.replicas ? { ...parsed.data, spec: { ...parsed.data.spec, replicas: auto.replicas } } : parsed.data;

  let problem: ReconcileProblem | undefined;
  // From the cache as the last apply left it, so that a reconcile before the cache has seen that apply does not
  // take it for a change of its own (and record Scaled or Updated again).
  let observed: V1Deployment | undefined = deps.writes.deployments.view(deps.getDeployment(namespace, name)) ?? (await deps.kube.getDeployment(namespace, name));
  const owned = !observed || observed.metadata?.ownerReferences?.some((r) => r.controller && r.uid === tw.metadata.uid);
  if (!owned) {
    problem = { reason: "DeploymentConflict", message: `a Deployment named ${name} exists and is not controlled by this TaskWorker; rename one of them` };
    observed = undefined;
    await deps.events.record(tw, "Warning", "DeploymentConflict", "Apply", problem.message);
  } else {
    const before = observed;
    try {
      observed = await deps.kube.applyDeployment(desiredDeployment(tw, deps.defaults));
      if (before) deps.writes.deployments.wrote(before, observed);
      if (!before) {
        await deps.events.record(tw, "Normal", "Created", "Apply", `created Deployment ${name} with ${tw.spec.replicas} replica(s)`);
      } else if (observed.metadata?.resourceVersion !== before.metadata?.resourceVersion) {
        const was = before.spec?.replicas;
        if (was !== undefined && was !== tw.spec.replicas && observed.metadata?.generation === (before.metadata?.generation ?? 0) + 1) {
          await deps.events.record(tw, "Normal", "Scaled", "Apply", `scaled Deployment ${name} from ${was} to ${tw.spec.replicas} replica(s)`);
        } else if (observed.metadata?.generation !== before.metadata?.generation) {
          await deps.events.record(tw, "Normal", "Updated", "Apply", `updated Deployment ${name}`);
        }
      }
    } catch (err) {
      problem = { reason: "ApplyFailed", message: `could not apply Deployment ${name}: ${messageOf(err)}` };
      await deps.events.record(tw, "Warning", "ApplyFailed", "Apply", problem.message);
    }
  }

  let backlog: number | undefined;
  try {
    backlog = await deps.backlog?.(tw.spec.tasks);
  } catch {
    backlog = undefined; // the run API is optional for TaskWorkers
  }
  const status = taskWorkerStatus(tw, observed, problem, deps.now(), backlog, auto);
  await writeStatus(deps, raw, tw, status, auto?.resourceVersion);
  if (problem?.reason === "ApplyFailed") throw new RetryableError(problem.message);
  return auto?.requeueAfterMs !== undefined ? { requeueAfterMs: auto.requeueAfterMs } : {};
}

/** Writes `status` unless `tw` (computed from `raw`) has it; `scaledAs` is the resourceVersion of this reconcile's scale write. */
async function writeStatus(deps: TaskWorkerDeps, raw: KubernetesObject, tw: TaskWorker, status: TaskWorkerStatus, scaledAs: string | undefined): Promise<void> {
  if (jsonEqual(status, tw.status ?? {})) return;
  // A merge patch keeps a key it does not name: `null` removes what autoscaling left when it was turned off.
  const body = tw.status?.autoscaling && !status.autoscaling ? { ...status, autoscaling: null } : status;
  const answer = await deps.kube.patchStatus(TASKWORKER.plural, tw.metadata.namespace ?? "default", tw.metadata.name, body);
  deps.writes.taskWorkers.wrote(raw, answer, scaledAs !== undefined ? [scaledAs] : []);
}

async function writeInvalid(deps: TaskWorkerDeps, raw: KubernetesObject, message: string): Promise<void> {
  const meta = raw.metadata ?? {};
  const name = meta.name ?? "";
  const prev = (raw as { status?: TaskWorkerStatus }).status ?? {};
  const og = meta.generation !== undefined ? { observedGeneration: meta.generation } : {};
  const status: TaskWorkerStatus = {
    ...prev,
    selector: selectorString(selectorLabels(name)),
    ...og,
    conditions: mergeConditions(
      prev.conditions,
      [
        { type: "Ready", status: "False", reason: "InvalidSpec", message, ...og },
        { type: "Degraded", status: "True", reason: "InvalidSpec", message, ...og },
      ],
      deps.now(),
    ),
  };
  if (jsonEqual(status, prev)) return;
  await deps.events.record(
    { apiVersion: API_VERSION, kind: TASKWORKER.kind, metadata: { name, namespace: meta.namespace, uid: meta.uid } },
    "Warning",
    "InvalidSpec",
    "Validate",
    message,
  );
  deps.writes.taskWorkers.wrote(raw, await deps.kube.patchStatus(TASKWORKER.plural, meta.namespace ?? "default", name, status));
}
