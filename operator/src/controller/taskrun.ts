import type { KubernetesObject } from "@kubernetes/client-node";
import { ApiError, isTerminal, type OffloadClient, type Run } from "@offload/sdk/internal";
import { API_VERSION, TASKRUN, TaskRunSchema, type TaskRun, type TaskRunStatus } from "../crds/schemas.js";
import { findCondition, jsonEqual, mergeConditions, type ConditionUpdate } from "./conditions.js";
import type { EventRecorder } from "./events.js";
import type { Kube } from "./kube.js";
import { RetryableError, type ReconcileResult } from "./result.js";

/** How much of a result a TaskRun's status shows. */
export const RESULT_SUMMARY_CHARS = 256;

export interface TaskRunDeps {
  kube: Kube;
  events: EventRecorder;
  /** The run API client; undefined when OFFLOAD_API_URL is not configured. */
  api: OffloadClient | undefined;
  getTaskRun(namespace: string, name: string): KubernetesObject | undefined;
  /** Delay between polls of a run that is not finished. */
  pollMs: number;
  now(): Date;
}

/**
 * Submits a TaskRun to the run API once (its UID is the idempotency key, so
 * a retry after a crash finds the same run) and mirrors the run into status
 * until it finishes. A run the API refuses (400) is marked `Accepted=False`,
 * reason `Invalid`, and left alone: retrying cannot fix it.
 */
export async function reconcileTaskRun(deps: TaskRunDeps, namespace: string, name: string): Promise<ReconcileResult> {
  const raw = deps.getTaskRun(namespace, name);
  if (!raw || raw.metadata?.deletionTimestamp) return {};
  const parsed = TaskRunSchema.safeParse(raw);
  const prev: TaskRunStatus = ((raw as { status?: TaskRunStatus }).status ?? {}) as TaskRunStatus;
  const generation = raw.metadata?.generation;
  const og = generation !== undefined ? { observedGeneration: generation } : {};
  const subject = { apiVersion: API_VERSION, kind: TASKRUN.kind, metadata: { name, namespace, uid: raw.metadata?.uid } };

  if (prev.state && isTerminal(prev.state)) return {};
  const accepted = findCondition(prev.conditions, "Accepted");
  if (accepted?.status === "False" && accepted.observedGeneration === generation) return {};

  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await reject(deps, raw, prev, og, subject, "Invalid", message);
    return {};
  }
  const tr = parsed.data;
  if (!deps.api) {
    await write(deps, tr, prev, { ...prev, ...og, conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: "Unknown", reason: "ApiNotConfigured", message: "the controller has no OFFLOAD_API_URL; it cannot submit TaskRuns", ...og }], deps.now()) });
    return {};
  }

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
    await write(deps, tr, prev, { ...prev, ...og, conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: prev.runId ? "True" : "Unknown", reason: prev.runId ? "Submitted" : reason, message: prev.runId ? `submitted as run ${prev.runId}` : message, ...og }], deps.now()) });
    throw new RetryableError(message);
  }

  // A PENDING run of a task nobody serves (a typo, or a TaskWorker not yet
  // applied) waits without end: say so, rather than just "PENDING".
  const unserved = run.state === "PENDING" && (await hasNoWorker(deps.api, run.task));
  const next = mirror(prev, run, og, deps.now(), unserved);
  await write(deps, tr, prev, next);
  if (submitted) await deps.events.record(subject, "Normal", "Submitted", "Submit", `submitted to the run API as run ${run.id}`);
  if (isTerminal(run.state)) {
    const note = run.state === "COMPLETED" ? `run ${run.id} completed after ${run.attempts} attempt(s)` : `run ${run.id} ended ${run.state}${run.error ? `: ${run.error.type}: ${run.error.message}` : ""}`;
    await deps.events.record(subject, run.state === "COMPLETED" ? "Normal" : "Warning", run.state === "COMPLETED" ? "Completed" : run.state === "FAILED" ? "Failed" : "Cancelled", "Observe", note);
    return {};
  }
  return { requeueAfterMs: deps.pollMs };
}

function submit(api: OffloadClient, tr: TaskRun): Promise<Run> {
  const body: Parameters<OffloadClient["createRun"]>[0] = { task: tr.spec.task, idempotencyKey: tr.metadata.uid };
  if (tr.spec.parameters !== undefined) body.parameters = tr.spec.parameters as Run["parameters"];
  return api.createRun(body);
}

/** True when the run API knows of no live worker serving `task`; false when it does, or cannot tell. */
async function hasNoWorker(api: OffloadClient, task: string): Promise<boolean> {
  try {
    const tasks = await api.listTasks();
    return !tasks.some((t) => t.name === task && t.workers.length > 0);
  } catch {
    return false;
  }
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
  subject: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid?: string } },
  reason: string,
  message: string,
): Promise<void> {
  const status: TaskRunStatus = {
    ...prev,
    ...og,
    conditions: mergeConditions(prev.conditions, [{ type: "Accepted", status: "False", reason, message: message.slice(0, 4096), ...og }], deps.now()),
  };
  if (jsonEqual(status, prev)) return;
  await deps.kube.patchStatus(TASKRUN.plural, raw.metadata?.namespace ?? "default", raw.metadata?.name ?? "", status);
  await deps.events.record(subject, "Warning", "Rejected", "Submit", message);
}

async function write(deps: TaskRunDeps, tr: TaskRun, prev: TaskRunStatus, next: TaskRunStatus): Promise<void> {
  if (jsonEqual(next, prev)) return;
  await deps.kube.patchStatus(TASKRUN.plural, tr.metadata.namespace ?? "default", tr.metadata.name, next);
}
