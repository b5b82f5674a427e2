import type { KubernetesObject } from "@kubernetes/client-node";
import { ApiError, RunFinishedError, isTerminal, type OffloadClient, type Run, type TaskInfo } from "@offload/sdk/internal";
import { API_VERSION, TASKRUN, TaskRunSchema, type TaskRun, type TaskRunStatus } from "../crds/schemas.js";
import { findCondition, jsonEqual, mergeConditions, type ConditionUpdate } from "./conditions.js";
import type { EventRecorder } from "./events.js";
import { addFinalizer as addFinalizerTo, finalizersOf, removeFinalizer } from "./finalizers.js";
import type { Kube } from "./kube.js";
import { CANCEL_RUN_FINALIZER } from "./labels.js";
import type { OwnWrites } from "./own-writes.js";
import { RetryableError, type ReconcileResult } from "./result.js";

/** How much of a result a TaskRun's status shows. */
const RESULT_SUMMARY_CHARS = 256;

export interface TaskRunDeps {
  kube: Kube;
  events: EventRecorder;
  /** The run API client; undefined when OFFLOAD_API_URL is not configured. */
  api: OffloadClient | undefined;
  getTaskRun(namespace: string, name: string): KubernetesObject | undefined;
  /** The controller's own writes of TaskRuns the informer cache may not show yet (see own-writes.ts). */
  writes: OwnWrites;
  /** The run API's task list (cached, shared with the TaskWorker backlogs); undefined when it cannot be had. */
  tasks(): Promise<TaskInfo[] | undefined>;
  /** Delay between polls of a run that is not finished. */
  pollMs: number;
  /**
   * How long after its `deletionTimestamp` a TaskRun whose run cannot be
   * cancelled (the run API unreachable) loses its finalizer anyway.
   */
  cancelGiveUpMs: number;
  now(): Date;
}

type Subject = { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid?: string } };

/**
 * Submits a TaskRun to the run API once (its UID is the idempotency key, so
 * a retry after a crash finds the same run) and mirrors the run into status
 * until it finishes. A run the API refuses (400) is marked `Accepted=False`,
 * reason `Invalid`, and left alone: retrying cannot fix it.
 *
 * With a run API, the TaskRun gets the {@link CANCEL_RUN_FINALIZER} before it
 * is submitted, and loses it once its run has finished: deleting a TaskRun
 * whose run is still going cancels the run first (see {@link finalize}).
 */
export async function reconcileTaskRun(deps: TaskRunDeps, namespace: string, name: string): Promise<ReconcileResult> {
  // As the controller last wrote it while the cache lags: a stale copy without the runId would submit again
  // (the idempotency key makes that the same run, but the Submitted event would be recorded twice).
  const raw = deps.writes.view(deps.getTaskRun(namespace, name));
  if (!raw) {
    deps.writes.forget(namespace, name);
    return {};
  }
  const parsed = TaskRunSchema.safeParse(raw);
  const prev: TaskRunStatus = ((raw as { status?: TaskRunStatus }).status ?? {}) as TaskRunStatus;
  const generation = raw.metadata?.generation;
  const og = generation !== undefined ? { observedGeneration: generation } : {};
  const subject: Subject = { apiVersion: API_VERSION, kind: TASKRUN.kind, metadata: { name, namespace, uid: raw.metadata?.uid } };

  if (raw.metadata?.deletionTimestamp) return finalize(deps, raw, prev, subject);
  // Finished, or refused before any run was made: nothing is left to cancel.
  if (prev.state && isTerminal(prev.state)) return dropFinalizer(deps, raw);
  const accepted = findCondition(prev.conditions, "Accepted");
  if (accepted?.status === "False" && accepted.observedGeneration === generation) return prev.runId ? {} : dropFinalizer(deps, raw);

  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await reject(deps, raw, prev, og, subject, "Invalid", message);
    return {};
  }
  const tr = parsed.data;
  if (!deps.api) {
    await write(deps, raw, prev, { ...prev, ...og, conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: "Unknown", reason: "ApiNotConfigured", message: "the controller has no OFFLOAD_API_URL; it cannot submit TaskRuns", ...og }], deps.now()) });
    return {};
  }

  // Before the run exists, so that no run is ever left without a way to cancel it.
  const current = await addFinalizer(deps, raw);
  if (!current) return {};

  let run: Run;
  let submitted = false;
  try {
    if (prev.runId) {
      try {
        run = await deps.api.getRun(prev.runId);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
        run = await submit(deps.api, tr); // the run API lost it: the same idempotency key makes it again
      }
    } else {
      run = await submit(deps.api, tr);
      submitted = true;
    }
  } catch (err) {
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && ![401, 403, 408, 429].includes(err.status)) {
      const where = err.issues?.length ? ` (${err.issues.map((i) => `${i.path}: ${i.message}`).join("; ")})` : "";
      await reject(deps, raw, prev, og, subject, "Invalid", `the run API refused the run: ${err.message}${where}`);
      return {};
    }
    const reason = err instanceof ApiError && (err.status === 401 || err.status === 403) ? "Unauthorized" : "ApiUnavailable";
    const message = `could not reach the run API: ${err instanceof Error ? err.message : String(err)}`;
    await write(deps, raw, prev, { ...prev, ...og, conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: prev.runId ? "True" : "Unknown", reason: prev.runId ? "Submitted" : reason, message: prev.runId ? `submitted as run ${prev.runId}` : message, ...og }], deps.now()) });
    throw new RetryableError(message);
  }

  // A PENDING run of a task nobody serves (a typo, or a TaskWorker not yet
  // applied) waits without end: say so, rather than just "PENDING".
  const unserved = run.state === "PENDING" && (await hasNoWorker(deps, run.task));
  const next = mirror(prev, run, og, deps.now(), unserved);
  const written = await write(deps, raw, prev, next);
  if (submitted) await deps.events.record(subject, "Normal", "Submitted", "Submit", `submitted to the run API as run ${run.id}`);
  if (isTerminal(run.state)) {
    const note = run.state === "COMPLETED" ? `run ${run.id} completed after ${run.attempts} attempt(s)` : `run ${run.id} ended ${run.state}${run.error ? `: ${run.error.type}: ${run.error.message}` : ""}`;
    await deps.events.record(subject, run.state === "COMPLETED" ? "Normal" : "Warning", run.state === "COMPLETED" ? "Completed" : run.state === "FAILED" ? "Failed" : "Cancelled", "Observe", note);
    return dropFinalizer(deps, written ?? current);
  }
  return { requeueAfterMs: deps.pollMs };
}

/**
 * A TaskRun being deleted: if it carries our finalizer and its run may still
 * be going, cancels the run, then removes the finalizer so that Kubernetes
 * can delete it. While the run API cannot be reached it retries with backoff,
 * until {@link TaskRunDeps.cancelGiveUpMs} after the deletion was asked for:
 * then it lets the TaskRun go anyway (with a Warning event), so that a dead
 * run API never holds up the deletion of a namespace.
 */
async function finalize(deps: TaskRunDeps, raw: KubernetesObject, prev: TaskRunStatus, subject: Subject): Promise<ReconcileResult> {
  if (!finalizersOf(raw).includes(CANCEL_RUN_FINALIZER)) return {};
  const runId = prev.runId;
  // Without a runId no run is known: the finalizer was added, but the submit never recorded one.
  if (runId && !(prev.state && isTerminal(prev.state))) {
    if (!deps.api) {
      await deps.events.record(subject, "Warning", "NotCancelled", "Cancel", `the controller has no OFFLOAD_API_URL: run ${runId} was not cancelled`);
    } else {
      try {
        const run = await deps.api.cancelRun(runId);
        await deps.events.record(subject, "Normal", "Cancelled", "Cancel", `the TaskRun was deleted: cancelled run ${runId} (${run.state})`);
      } catch (err) {
        // Finished meanwhile (409), or unknown to the run API (404): nothing to cancel.
        if (!(err instanceof RunFinishedError || (err instanceof ApiError && err.status === 404))) {
          const message = `could not cancel run ${runId}: ${err instanceof Error ? err.message : String(err)}`;
          const left = deps.cancelGiveUpMs - (deps.now().getTime() - new Date(raw.metadata!.deletionTimestamp!).getTime());
          if (left > 0) throw new RetryableError(message, left);
          await deps.events.record(subject, "Warning", "CancelFailed", "Cancel", `${message}; gave up after ${Math.round(deps.cancelGiveUpMs / 1000)}s and let the TaskRun go: the run may still be going`);
        }
      }
    }
  }
  return dropFinalizer(deps, raw);
}

/** Adds the {@link CANCEL_RUN_FINALIZER} (see finalizers.ts); answers the TaskRun as it is now, or undefined if it is gone. */
async function addFinalizer(deps: TaskRunDeps, obj: KubernetesObject): Promise<KubernetesObject | undefined> {
  const current = await addFinalizerTo(deps.kube, TASKRUN.plural, CANCEL_RUN_FINALIZER, obj);
  if (current && current !== obj) deps.writes.wrote(obj, current);
  return current;
}

/** Removes the {@link CANCEL_RUN_FINALIZER} if the TaskRun has it. */
async function dropFinalizer(deps: TaskRunDeps, obj: KubernetesObject): Promise<ReconcileResult> {
  const answer = await removeFinalizer(deps.kube, TASKRUN.plural, CANCEL_RUN_FINALIZER, obj);
  if (answer) deps.writes.wrote(obj, answer);
  return {};
}

function submit(api: OffloadClient, tr: TaskRun): Promise<Run> {
  const body: Parameters<OffloadClient["createRun"]>[0] = { task: tr.spec.task, idempotencyKey: tr.metadata.uid };
  if (tr.spec.parameters !== undefined) body.parameters = tr.spec.parameters as Run["parameters"];
  // The run belongs to the TaskRun's namespace, not to the controller's: with OFFLOAD_AUTH=kubernetes its reads,
  // cancel and retry are authorized there (the chart grants the controller runs in every namespace).
  if (tr.metadata.namespace) body.namespace = tr.metadata.namespace;
  return api.createRun(body);
}

/** True when the run API knows of no live worker serving `task`; false when it does, or cannot tell. */
async function hasNoWorker(deps: TaskRunDeps, task: string): Promise<boolean> {
  const tasks = await deps.tasks();
  return tasks !== undefined && !tasks.some((t) => t.name === task && t.workers.length > 0);
}

/** The TaskRun status that shows `run`; `unserved` when no worker serves its task. Pure. */
export function mirror(prev: TaskRunStatus, run: Run, og: { observedGeneration?: number }, now: Date, unserved = false): TaskRunStatus {
  const s: TaskRunStatus = { ...prev, ...og, runId: run.id, state: run.state, attempts: run.attempts };
  if (run.startedAt) s.startedAt = run.startedAt;
  if (run.finishedAt) s.finishedAt = run.finishedAt;
  if (run.error) s.error = { type: run.error.type, message: run.error.message.slice(0, 4096) };
  if (run.state === "COMPLETED") {
    const summary = run.result !== null ? summarize(run.result) : run.resultRef ? `(stored in the result store: ${run.resultRef})` : undefined;
    if (summary !== undefined) s.resultSummary = summary;
  }
  const succeeded: ConditionUpdate =
    run.state === "COMPLETED"
      ? { type: "Succeeded", status: "True", reason: run.cached ? "Cached" : "Completed", message: run.cached ? "served from the cache of an earlier run" : "the run completed", ...og }
      : run.state === "FAILED"
        ? { type: "Succeeded", status: "False", reason: "Failed", message: run.error ? `${run.error.type}: ${run.error.message}`.slice(0, 4096) : "the run failed", ...og }
        : run.state === "CANCELLED"
          ? { type: "Succeeded", status: "False", reason: "Cancelled", message: "the run was cancelled", ...og }
          : unserved
            ? { type: "Succeeded", status: "Unknown", reason: "NoWorker", message: `no worker serves task "${run.task}": the run waits until a TaskWorker serving it is ready`, ...og }
            : { type: "Succeeded", status: "Unknown", reason: camel(run.state), message: `the run is ${run.state}`, ...og };
  s.conditions = mergeConditions(prev.conditions, [{ type: "Accepted", status: "True", reason: "Submitted", message: `submitted as run ${run.id}`, ...og }, succeeded], now);
  return s;
}

/** JSON of `value`, cut to {@link RESULT_SUMMARY_CHARS} characters with an ellipsis. */
export function summarize(value: unknown): string {
  const json = JSON.stringify(value) ?? "null";
  return json.length <= RESULT_SUMMARY_CHARS ? json : `${json.slice(0, RESULT_SUMMARY_CHARS - 1)}…`;
}

function camel(state: string): string {
  return state
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

async function reject(
  deps: TaskRunDeps,
  raw: KubernetesObject,
  prev: TaskRunStatus,
  og: { observedGeneration?: number },
  subject: Subject,
  reason: string,
  message: string,
): Promise<void> {
  const status: TaskRunStatus = {
    ...prev,
    ...og,
    conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: "False", reason, message: message.slice(0, 4096), ...og }], deps.now()),
  };
  if (jsonEqual(status, prev)) return;
  deps.writes.wrote(raw, await deps.kube.patchStatus(TASKRUN.plural, raw.metadata?.namespace ?? "default", raw.metadata?.name ?? "", status));
  await deps.events.record(subject, "Warning", "Rejected", "Submit", message);
}

/** Writes `next` (computed from `raw`, whose status is `prev`) unless it equals `prev`; answers the object as written, if it was. */
async function write(deps: TaskRunDeps, raw: KubernetesObject, prev: TaskRunStatus, next: TaskRunStatus): Promise<KubernetesObject | undefined> {
  if (jsonEqual(next, prev)) return undefined;
  const answer = await deps.kube.patchStatus(TASKRUN.plural, raw.metadata?.namespace ?? "default", raw.metadata?.name ?? "", next);
  deps.writes.wrote(raw, answer);
  return answer;
}
