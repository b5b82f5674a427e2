import type { TaskInfo } from "@offload/sdk/internal";
import type { Logger } from "pino";
import { TASKWORKER, type TaskWorker, type TaskWorkerStatus } from "../crds/schemas.js";
import { backlogOf, decide, deletionCosts, type Decision, type Recommendation } from "./autoscale.js";
import type { ConditionUpdate } from "./conditions.js";
import type { EventRecorder } from "./events.js";
import { messageOf, type Kube } from "./kube.js";
import { selectorLabels, selectorString } from "./labels.js";
import { RetryableError } from "./result.js";

/** The annotation the ReplicaSet controller ranks scale-down victims by (lower goes first). */
export const POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

/** A size this controller wrote, over the TaskWorker's `generation` it had read. */
interface Written {
  replicas: number;
  generation: number;
}

/** The run API's task list as the controller last saw it, or why it has none. */
export type TaskSnapshot =
  | { ok: true; tasks: readonly TaskInfo[] }
  | { ok: false; reason: "NoRunApi" | "RunApiUnavailable"; message: string };

export interface AutoscalerDeps {
  kube: Kube;
  events: EventRecorder;
  log: Logger;
  /** The latest task list; never a request per TaskWorker (see controller.ts). */
  snapshot(): Promise<TaskSnapshot>;
  now(): number;
}

export type AutoscalingStatus = NonNullable<TaskWorkerStatus["autoscaling"]>;

/** What one autoscaling step did, for the rest of the reconcile. */
export interface AutoscaleOutcome {
  /** `spec.replicas` after this step (what the Deployment must get). */
  replicas: number;
  status: AutoscalingStatus;
  conditions: ConditionUpdate[];
  /** Reconcile again after this long: a held-back scale-down becomes due then. */
  requeueAfterMs?: number;
  /** The TaskWorker's resourceVersion after this step's scale write, if it made one (older than its status write: see own-writes.ts). */
  resourceVersion?: string;
}

/**
 * The tasks a pool serves: `spec.tasks`, or (without a list) the tasks its
 * pods' workers serve, recognised by their worker ids (pod names
 * `<taskworker>-<replicaset hash>-<5 chars>`); undefined when neither tells.
 */
export function poolTasks(name: string, tasks: readonly string[] | undefined, list: readonly TaskInfo[]): Set<string> | undefined {
  if (tasks?.length) return new Set(tasks);
  const podName = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-[a-z0-9]+-[a-z0-9]{5}$`);
  const served = list.filter((t) => t.workers.some((w) => podName.test(w.workerId))).map((t) => t.name);
  return served.length ? new Set(served) : undefined;
}

/**
 * Sizes TaskWorkers that have `spec.autoscaling` on their backlog. It keeps
 * each pool's recent recommendations in memory (the scale-down delay's
 * window); a new leader starts with none and so waits a full delay before
 * scaling anything down (see {@link decide}).
 */
export class Autoscaler {
  /** By `namespace/name`; the uid tells a TaskWorker from a later one of the same name. */
  readonly #history = new Map<string, { uid: string | undefined; recs: Recommendation[]; written?: Written }>();

  constructor(private readonly deps: AutoscalerDeps) {}

  /** Drops what is kept for a TaskWorker that is gone. */
  forget(namespace: string, name: string): void {
    this.#history.delete(`${namespace}/${name}`);
  }

  /**
   * One step for `tw`: decides its size and, if it changes, writes it through
   * the scale subresource (after marking pod-deletion costs when it lowers
   * it). Undefined when `tw` is not autoscaled.
   */
  async step(tw: TaskWorker): Promise<AutoscaleOutcome | undefined> {
    const a = tw.spec.autoscaling;
    const key = `${tw.metadata.namespace ?? "default"}/${tw.metadata.name}`;
    const uid = tw.metadata.uid;
    if (!a) {
      this.#history.delete(key);
      return undefined;
    }
    const snap = await this.deps.snapshot();
    let backlog: number | undefined;
    let active: ConditionUpdate;
    const og = tw.metadata.generation !== undefined ? { observedGeneration: tw.metadata.generation } : {};
    if (!snap.ok) {
      active = { type: "ScalingActive", status: "False", reason: snap.reason, message: `${snap.message}; replicas are left as they are`, ...og };
    } else {
      const names = poolTasks(tw.metadata.name, tw.spec.tasks, snap.tasks);
      if (!names) {
        active = {
          type: "ScalingActive",
          status: "False",
          reason: "TasksUnknown",
          message: "spec.tasks is not set and no pod of this pool has reported its tasks to the run API yet; replicas are left as they are",
          ...og,
        };
      } else {
        backlog = backlogOf(snap.tasks, names);
        active = { type: "ScalingActive", status: "True", reason: "BacklogKnown", message: `sizing on the backlog of ${[...names].sort().join(", ")}`, ...og };
      }
    }

    const now = this.deps.now();
    const kept = this.#history.get(key);
    const mine = kept && kept.uid === uid ? kept : undefined;
    // The informer's copy may not show our last scale write yet (generation not past the one we wrote over):
    // going by it would scale the Deployment back for a moment and write the same size twice.
    const stale = mine?.written && (tw.metadata.generation ?? 0) <= mine.written.generation ? mine.written : undefined;
    const current = stale ? stale.replicas : tw.spec.replicas;
    const d = decide({ autoscaling: a, concurrency: tw.spec.concurrency, current, backlog, history: mine?.recs ?? [], hasPods: (tw.status?.replicas ?? 0) > 0, now });
    const entry: { uid: string | undefined; recs: Recommendation[]; written?: Written } = { uid, recs: d.history };
    if (stale) entry.written = stale;
    this.#history.set(key, entry);

    let replicas = current;
    let resourceVersion: string | undefined;
    let lastScaleTime = tw.status?.autoscaling?.lastScaleTime;
    if (d.desired !== current) {
      if (d.desired < current && snap.ok) await this.#markPods(tw, snap.tasks);
      try {
        const scaled = await this.deps.kube.patchScale(TASKWORKER.plural, tw.metadata.namespace ?? "default", tw.metadata.name, d.desired);
        replicas = scaled.replicas;
        resourceVersion = scaled.resourceVersion;
        entry.written = { replicas, generation: tw.metadata.generation ?? 0 };
      } catch (err) {
        throw new RetryableError(`could not scale TaskWorker ${tw.metadata.name} to ${d.desired}: ${messageOf(err)}`);
      }
      lastScaleTime = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
      await this.deps.events.record(tw, "Normal", "Autoscaled", "Scale", `Scaled from ${current} to ${d.desired}: ${eventReason(d, backlog)}`);
      this.deps.log.info({ taskWorker: `${tw.metadata.namespace}/${tw.metadata.name}`, from: current, to: d.desired, backlog }, "autoscaled");
    }

    const status: AutoscalingStatus = { desiredReplicas: d.desired, reason: d.reason };
    if (backlog !== undefined) status.backlog = backlog;
    else if (tw.status?.autoscaling?.backlog !== undefined) status.backlog = tw.status.autoscaling.backlog;
    if (lastScaleTime) status.lastScaleTime = lastScaleTime;
    const limited: ConditionUpdate = d.limit
      ? { type: "ScalingLimited", status: "True", reason: d.limit === "maxReplicas" ? "TooManyReplicas" : "TooFewReplicas", message: d.reason, ...og }
      : { type: "ScalingLimited", status: "False", reason: "DesiredWithinRange", message: `the size wanted is within ${a.minReplicas}..${a.maxReplicas}`, ...og };
    const out: AutoscaleOutcome = { replicas, status, conditions: [active, limited] };
    if (resourceVersion !== undefined) out.resourceVersion = resourceVersion;
    // A few ms late: a timer's millisecond rounding must not wake it just before the scale-down is due.
    if (d.recheckAt !== undefined) out.requeueAfterMs = Math.max(0, d.recheckAt - now) + 5;
    return out;
  }

  /**
   * Sets each live pod's deletion cost to its runs in flight, where it
   * differs, so that the ReplicaSet's scale-down takes idle pods first.
   * Only here, just before lowering replicas, not on every reconcile: each
   * change is a pod update that every watcher of pods sees, and the
   * Kubernetes docs ask not to update the annotation often.
   */
  async #markPods(tw: TaskWorker, tasks: readonly TaskInfo[]): Promise<void> {
    const ns = tw.metadata.namespace ?? "default";
    try {
      const pods = (await this.deps.kube.listPods(ns, selectorString(selectorLabels(tw.metadata.name)))).filter((p) => p.metadata?.name && !p.metadata.deletionTimestamp);
      const costs = deletionCosts(
        pods.map((p) => p.metadata!.name!),
        tasks,
      );
      let changed = 0;
      for (const p of pods) {
        const name = p.metadata!.name!;
        const cost = String(costs.get(name) ?? -1);
        if (p.metadata?.annotations?.[POD_DELETION_COST] === cost) continue;
        await this.deps.kube.annotatePod(ns, name, { [POD_DELETION_COST]: cost });
        changed++;
      }
      this.deps.log.debug({ taskWorker: `${ns}/${tw.metadata.name}`, costs: Object.fromEntries(costs), changed }, "marked pod-deletion costs");
    } catch (err) {
      // Not scaling down unmarked: a busy pod could be the one to go.
      throw new RetryableError(`could not mark the pods of TaskWorker ${tw.metadata.name} before a scale-down: ${messageOf(err)}`);
    }
  }
}

function eventReason(d: Decision, backlog: number | undefined): string {
  if (backlog === undefined) return `outside ${d.limit ?? "the bounds"} (the backlog is unknown)`;
  const base = `backlog ${backlog}, ${d.target} per replica`;
  return d.limit ? `${base} (at ${d.limit})` : base;
}
