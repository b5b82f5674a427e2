import type { TaskInfo } from "@offload/sdk/internal";
import type { Autoscaling } from "../crds/schemas.js";

/**
 * The autoscaler's decision, as pure functions of what it observed and the
 * time: no I/O, no clock of its own, so a test can walk it through minutes of
 * backlog in microseconds. `autoscaler.ts` does the I/O around it.
 */

/** One size the backlog asked for, and since when (a stabilization-window sample). */
export interface Recommendation {
  at: number;
  replicas: number;
}

/** What one decision looks at. */
export interface DecisionInput {
  autoscaling: Autoscaling;
  /** `spec.concurrency`: the default of `targetBacklogPerReplica`. */
  concurrency: number;
  /** `spec.replicas` now. */
  current: number;
  /** Runs waiting plus running for the pool's tasks; undefined when the run API cannot tell. */
  backlog: number | undefined;
  /** The earlier recommendations still in the window (oldest first); see {@link decide}. */
  history: readonly Recommendation[];
  /**
   * Whether the pool has pods now (`status.replicas` > 0). A first decision
   * seeds its window with `current` only then: a pool with no pod yet (a
   * TaskWorker just created with `minReplicas: 0`) has nothing to protect and
   * must not run the default single pod for a whole delay. Default true.
   */
  hasPods?: boolean;
  now: number;
}

/** Why the size is what it is, for `ScalingLimited` and the status. */
export type Limit = "minReplicas" | "maxReplicas" | undefined;

export interface Decision {
  /** The size to set `spec.replicas` to (equal to `current` when nothing changes). */
  desired: number;
  /** The size the backlog alone asks for, within [min, max] (before the scale-down delay). */
  recommended: number;
  /** ceil(backlog / target) before clamping; undefined without a backlog. */
  wanted: number | undefined;
  target: number;
  limit: Limit;
  /** A sentence saying why `desired`, for `status.autoscaling.reason` and the Event. */
  reason: string;
  /** The history to keep for the next decision. */
  history: Recommendation[];
  /** When a held-back scale-down becomes due, if one is held back: reconcile again then. */
  recheckAt: number | undefined;
}

/** `targetBacklogPerReplica`, or the pool's concurrency when not set. */
export function targetOf(a: Autoscaling, concurrency: number): number {
  return a.targetBacklogPerReplica ?? Math.max(1, concurrency);
}

/**
 * The load a TaskWorker sizes itself on: runs waiting (`backlog`) plus runs
 * running (`inFlight`) of each of its tasks. A task served by two TaskWorkers
 * counts whole in each (never split by share): splitting can leave a run with
 * no pod when both pools sit at zero, counting whole can only over-provision.
 */
export function backlogOf(tasks: readonly TaskInfo[], names: ReadonlySet<string>): number {
  let sum = 0;
  for (const t of tasks) if (names.has(t.name)) sum += t.backlog + t.inFlight;
  return sum;
}

/**
 * Decides the pool's size. Up at once; down only to the highest size
 * recommended within the last `scaleDownDelaySeconds` (the
 * HorizontalPodAutoscaler's downscale stabilization window,
 * `pkg/controller/podautoscaler/horizontal.go` `stabilizeRecommendation`),
 * so a size must have been wanted for the whole window before pods go, and a
 * backlog that comes and goes keeps the pool at its peak instead of flapping.
 *
 * Each recommendation counts from its `at` until the next one replaces it,
 * so one taken before the window began still counts if no later one came
 * before the window's start (samples come on changes, not on a timer).
 * A first decision (empty history) starts from `current`, as the HPA seeds
 * its history with the current size: a restarted controller waits a full
 * window before it scales anything down. A pool with no pod yet is not
 * seeded: it goes straight to what the backlog asks for.
 *
 * Without a backlog (the run API cannot tell), nothing is decided beyond
 * keeping `current` within [min, max]: scaling down on missing data could
 * stop pods that are busy.
 */
export function decide(i: DecisionInput): Decision {
  const { minReplicas: min, maxReplicas: max, scaleDownDelaySeconds } = i.autoscaling;
  const target = targetOf(i.autoscaling, i.concurrency);
  const windowMs = scaleDownDelaySeconds * 1000;
  const clamp = (n: number): number => Math.min(max, Math.max(min, n));
  const seed = i.hasPods === false ? [] : [{ at: i.now, replicas: i.current }];
  const history = i.history.length ? [...i.history] : seed;

  if (i.backlog === undefined) {
    const desired = clamp(i.current);
    const limit: Limit = desired !== i.current ? (desired === max ? "maxReplicas" : "minReplicas") : undefined;
    const reason =
      limit === "maxReplicas"
        ? `at maxReplicas: ${i.current} replicas is above the bound`
        : limit === "minReplicas"
          ? `at minReplicas: ${i.current} replicas is below the bound`
          : `keeping ${i.current}: the backlog is unknown`;
    return { desired, recommended: desired, wanted: undefined, target, limit, reason, history, recheckAt: undefined };
  }

  const wanted = i.backlog === 0 ? 0 : Math.ceil(i.backlog / target);
  const recommended = clamp(wanted);
  const limit: Limit = wanted > max ? "maxReplicas" : wanted < min ? "minReplicas" : undefined;
  const last = history[history.length - 1];
  if (!last || last.replicas !== recommended) history.push({ at: i.now, replicas: recommended });

  const cutoff = i.now - windowMs;
  // The samples that were in force at some time within the window: every one taken after the cutoff, and the
  // last one taken at or before it (in force at the cutoff). Older ones can never count again: drop them.
  let firstInForce = 0;
  for (let k = 0; k < history.length; k++) if (history[k]!.at <= cutoff) firstInForce = k;
  const kept = history.slice(firstInForce);
  const ceiling = Math.max(...kept.map((r) => r.replicas));

  const why = `backlog ${i.backlog}, ${target} per replica`;
  let desired: number;
  let reason: string;
  let recheckAt: number | undefined;
  if (recommended >= i.current) {
    desired = recommended;
    reason = limitText(limit, i.backlog, target, wanted) ?? `${why} wants ${recommended}`;
  } else {
    // Clamped again: a maxReplicas lowered below sizes still in the window applies at once, as the HPA's does.
    desired = clamp(Math.max(recommended, Math.min(i.current, ceiling)));
    if (desired > recommended) {
      // The earliest time the ceiling can drop: when the next sample after the highest one still in force
      // takes over at the window's start.
      recheckAt = dueAt(kept, desired, windowMs);
      reason = `${why} wants ${recommended}; keeping ${desired} until ${scaleDownDelaySeconds}s have passed without a higher need`;
    } else {
      reason = limitText(limit, i.backlog, target, wanted) ?? `${why} wants ${recommended}`;
    }
  }
  return { desired, recommended, wanted, target, limit, reason, history: kept, recheckAt };
}

/** When the samples at or above `level` stop being in force within the window. */
function dueAt(kept: readonly Recommendation[], level: number, windowMs: number): number | undefined {
  for (let k = kept.length - 1; k >= 0; k--) {
    if (kept[k]!.replicas >= level) {
      const next = kept[k + 1];
      return next ? next.at + windowMs : undefined;
    }
  }
  return undefined;
}

function limitText(limit: Limit, backlog: number, target: number, wanted: number): string | undefined {
  if (!limit) return undefined;
  return `at ${limit}: backlog ${backlog}, ${target} per replica wants ${wanted}`;
}

/**
 * The `controller.kubernetes.io/pod-deletion-cost` of each pod, from the run
 * API's per-worker in-flight counts (a worker's id is its pod's name): its
 * runs in flight, so the ReplicaSet deletes idle pods (0) before busy ones;
 * a pod the run API has not heard from (not started yet, or silent) -1, the
 * cheapest of all.
 */
export function deletionCosts(pods: readonly string[], tasks: readonly TaskInfo[]): Map<string, number> {
  const inFlight = new Map<string, number>();
  for (const t of tasks) for (const w of t.workers) inFlight.set(w.workerId, (inFlight.get(w.workerId) ?? 0) + w.inFlight);
  return new Map(pods.map((p) => [p, inFlight.get(p) ?? -1]));
}
