import type { KubernetesObject } from "@kubernetes/client-node";
import { ApiError, type PutScheduleBody, type Schedule } from "@offload/sdk/internal";
import { API_VERSION, TASKSCHEDULE, TaskScheduleSchema, type TaskSchedule, type TaskScheduleSpec, type TaskScheduleStatus } from "../crds/schemas.js";
import { findCondition, jsonEqual, mergeConditions, type ConditionUpdate } from "./conditions.js";
import type { EventRecorder, EventSubject } from "./events.js";
import { addFinalizer, finalizersOf, removeFinalizer } from "./finalizers.js";
import type { Kube } from "./kube.js";
import type { OwnWrites } from "./own-writes.js";
import { RetryableError, type ReconcileResult } from "./result.js";

/**
 * The finalizer every TaskSchedule gets before its schedule is put in the run
 * API, so that deleting the TaskSchedule deletes the schedule first: without
 * it the run API would go on starting runs for an object that is gone.
 */
export const SCHEDULE_FINALIZER = "offload.dev/schedule";

/** The key of a TaskSchedule's schedule in the run API (in the TaskSchedule's namespace). */
export const scheduleKeyOf = (name: string): string => `taskschedule.${name}`;

/** How the Ready message of a spec whose parameters the run API refused begins (those are tried again, see below). */
const REFUSED_PARAMETERS = "the run API refused the schedule's parameters";

/** How long after a schedule's next time the controller reads it again (the run API fires at that time; this reads the outcome). */
const AFTER_NEXT_MS = 1000;

/**
 * The longest wait between tries while the run API cannot be reached (the queue's backoff doubles from 5 ms and
 * would soon wait minutes): a run API back from a restart gets a changed spec within seconds, not at the next resync.
 */
const API_RETRY_MS = 5000;

/** The schedule calls of the run API client (`OffloadClient` has them); undefined when OFFLOAD_API_URL is not configured. */
export interface ScheduleApi {
  putSchedule(key: string, body: PutScheduleBody): Promise<Schedule>;
  getSchedule(key: string, options: { namespace?: string }): Promise<Schedule>;
  deleteSchedule(key: string, options: { namespace?: string }): Promise<unknown>;
}

export interface TaskScheduleDeps {
  kube: Kube;
  events: EventRecorder;
  api: ScheduleApi | undefined;
  getTaskSchedule(namespace: string, name: string): KubernetesObject | undefined;
  /** The controller's own writes of TaskSchedules the informer cache may not show yet (see own-writes.ts). */
  writes: OwnWrites;
  /** The soonest a schedule is read again, and the wait while its next time has passed but no run shows yet. */
  minRequeueMs: number;
  /** The longest a schedule goes unread (so a change made around the controller, e.g. a run API reset, is seen). */
  maxRequeueMs: number;
  /**
   * How long after its `deletionTimestamp` a TaskSchedule whose schedule
   * cannot be deleted (the run API unreachable) loses its finalizer anyway.
   */
  deleteGiveUpMs: number;
  now(): Date;
}

/**
 * Reconciles a TaskSchedule through the run API: puts its spec as the
 * schedule `taskschedule.<name>` of its namespace once per generation
 * (the run API fires the runs, on whichever replica, one per time), then
 * mirrors the schedule's last and next times into status, reading it again
 * just after each next time so that `kubectl get ts` shows LAST SCHEDULE
 * moving. A spec the run API refuses (400: a cron or time zone it cannot
 * read) is marked `Ready=False`, reason `InvalidSchedule`, and left alone
 * until the spec changes: retrying cannot fix it.
 */
export async function reconcileTaskSchedule(deps: TaskScheduleDeps, namespace: string, name: string): Promise<ReconcileResult> {
  // As the controller last wrote it while the cache lags: a stale copy without the accepted generation would put
  // the schedule again and record Created (or Updated) a second time.
  const raw = deps.writes.view(deps.getTaskSchedule(namespace, name));
  if (!raw) {
    deps.writes.forget(namespace, name);
    return {};
  }
  const prev: TaskScheduleStatus = ((raw as { status?: TaskScheduleStatus }).status ?? {}) as TaskScheduleStatus;
  const generation = raw.metadata?.generation;
  const og = generation !== undefined ? { observedGeneration: generation } : {};
  const subject: EventSubject = { apiVersion: API_VERSION, kind: TASKSCHEDULE.kind, metadata: { name, namespace, uid: raw.metadata?.uid } };
  const key = scheduleKeyOf(name);
  const ready = (u: Omit<ConditionUpdate, "type">): TaskScheduleStatus["conditions"] => mergeConditions(prev.conditions, [{ type: "Ready", ...u, ...og }], deps.now());

  if (raw.metadata?.deletionTimestamp) return finalize(deps, raw, subject, key, namespace);

  const parsed = TaskScheduleSchema.safeParse(raw);
  if (!parsed.success) {
    // The API server checks the same schema; this is an object written before a CRD change, or past it.
    const message = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    await write(deps, raw, prev, { ...prev, ...og, conditions: ready({ status: "False", reason: "Invalid", message: message.slice(0, 4096) }) }, subject, "Invalid", message);
    return {};
  }
  const ts = parsed.data;
  if (!deps.api) {
    await write(deps, raw, prev, { ...prev, ...og, conditions: ready({ status: "Unknown", reason: "ApiNotConfigured", message: "the controller has no OFFLOAD_API_URL; it cannot schedule runs" }) });
    return {};
  }
  // A refused generation stays refused: only a new spec can change the answer. Except refused parameters: a worker
  // registering the task's new input schema (a rolling deploy) can make them right, so those are tried again.
  const readyNow = findCondition(prev.conditions, "Ready");
  const refusedParameters = readyNow?.message.startsWith(REFUSED_PARAMETERS) === true;
  if (readyNow?.reason === "InvalidSchedule" && readyNow.observedGeneration === generation && !refusedParameters) return {};

  // Before the schedule exists in the run API, so that none is ever left there without a way to delete it.
  const current = await addFinalizer(deps.kube, TASKSCHEDULE.plural, SCHEDULE_FINALIZER, raw);
  if (!current) return {};
  if (current !== raw) deps.writes.wrote(raw, current);

  // Put once per generation (and again after the run API could not be reached); otherwise only read.
  const accepted = readyNow?.status === "True" && prev.observedGeneration === generation;
  let schedule: Schedule;
  let put: "Created" | "Updated" | "Restored" | undefined;
  try {
    const held = accepted ? await deps.api.getSchedule(key, { namespace }).catch(notFoundAsUndefined) : undefined;
    if (held && sameSpec(ts.spec, held)) schedule = held;
    else {
      schedule = await putSpec(deps.api, ts, key);
      // Held but different: changed around the controller (a PUT to the same key over HTTP); the TaskSchedule rules.
      // Not held though accepted: the run API lost it (a database reset, a DELETE over HTTP).
      if (accepted) put = "Restored";
      else if (prev.observedGeneration === undefined) put = "Created";
      else if (prev.observedGeneration !== generation) put = "Updated";
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) {
      const where = err.issues?.length ? ` (${err.issues.map((i) => `${i.path}: ${i.message}`).join("; ")})` : "";
      // A spec it took before stays in force there (the run API keeps what it had): say so, rather than let a refusal look like a stop.
      const held = await deps.api.getSchedule(key, { namespace }).then(
        () => true,
        () => false,
      );
      const kept = held ? "; it keeps the schedule of the spec it took before until this is fixed or the TaskSchedule deleted" : "";
      const parameters = err.code === "OFFLOAD_INVALID_PARAMETERS";
      const message = `${parameters ? REFUSED_PARAMETERS : "the run API refused the schedule"}: ${err.message}${where}${kept}`;
      await write(deps, raw, prev, { ...prev, ...og, conditions: ready({ status: "False", reason: "InvalidSchedule", message: message.slice(0, 4096) }) }, subject, "Refused", message);
      return parameters ? { requeueAfterMs: deps.maxRequeueMs } : {};
    }
    const unauthorized = err instanceof ApiError && (err.status === 401 || err.status === 403);
    const message = `${unauthorized ? "the run API refused the controller's credentials" : "could not reach the run API"}: ${err instanceof Error ? err.message : String(err)}`;
    // The times stay as last seen: the run API may well still be firing the schedule.
    await write(deps, raw, prev, { ...prev, conditions: ready({ status: "False", reason: unauthorized ? "Unauthorized" : "ApiUnavailable", message: message.slice(0, 4096) }) });
    throw new RetryableError(message, API_RETRY_MS);
  }

  const next = mirror(prev, schedule, og, deps.now());
  const changed =
    put === "Created" ? "the run API accepted the schedule" : put === "Updated" ? "the run API accepted the changed schedule" : "the run API had lost the schedule or held another: put it back";
  await write(deps, raw, prev, next, put ? subject : undefined, put, put ? `${changed} (${describe(schedule)})` : undefined);
  return { requeueAfterMs: requeueAfter(deps, schedule) };
}

/**
 * A TaskSchedule being deleted: deletes its schedule from the run API (one
 * it does not know counts as deleted), then removes the finalizer. While the
 * run API cannot be reached it retries with backoff, until
 * {@link TaskScheduleDeps.deleteGiveUpMs} after the deletion was asked for:
 * then it lets the TaskSchedule go with a Warning event naming the schedule
 * left behind, so that a dead run API never holds up a namespace's deletion.
 */
async function finalize(deps: TaskScheduleDeps, raw: KubernetesObject, subject: EventSubject, key: string, namespace: string): Promise<ReconcileResult> {
  if (!finalizersOf(raw).includes(SCHEDULE_FINALIZER)) return {};
  if (!deps.api) {
    await deps.events.record(subject, "Warning", "NotDeleted", "Delete", `the controller has no OFFLOAD_API_URL: schedule ${key} was not deleted from the run API`);
  } else {
    try {
      await deps.api.deleteSchedule(key, { namespace });
      await deps.events.record(subject, "Normal", "Deleted", "Delete", `deleted schedule ${key} from the run API: no more runs start`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        const message = `could not delete schedule ${key} from the run API: ${err instanceof Error ? err.message : String(err)}`;
        const left = deps.deleteGiveUpMs - (deps.now().getTime() - new Date(raw.metadata!.deletionTimestamp!).getTime());
        // Tried again within seconds (as a put is), so a run API back from a restart lets the deletion through at once.
        if (left > 0) throw new RetryableError(message, Math.min(left, API_RETRY_MS));
        await deps.events.record(
          subject,
          "Warning",
          "DeleteFailed",
          "Delete",
          `${message}; gave up after ${Math.round(deps.deleteGiveUpMs / 1000)}s and let the TaskSchedule go: the schedule may still start runs (delete it with \`offload schedules rm ${key} --namespace ${namespace}\`)`,
        );
      }
    }
  }
  const answer = await removeFinalizer(deps.kube, TASKSCHEDULE.plural, SCHEDULE_FINALIZER, raw);
  if (answer) deps.writes.wrote(raw, answer);
  return {};
}

/** The run API's schedule body for a TaskSchedule (the run API fills in its own defaults for what is unset). */
export function scheduleBody(ts: TaskSchedule): PutScheduleBody {
  const s = ts.spec;
  const body: PutScheduleBody = { task: s.task, schedule: s.schedule, concurrencyPolicy: s.concurrencyPolicy, suspend: s.suspend };
  if (s.timeZone !== undefined) body.timeZone = s.timeZone;
  if (s.parameters !== undefined) body.parameters = s.parameters as PutScheduleBody["parameters"];
  if (s.startingDeadlineSeconds !== undefined) body.startingDeadlineSeconds = s.startingDeadlineSeconds;
  if (s.priority !== undefined) body.priority = s.priority;
  if (s.concurrencyKey !== undefined) body.concurrencyKey = s.concurrencyKey;
  if (s.rateLimitKey !== undefined) body.rateLimitKey = s.rateLimitKey;
  // The schedule and its runs belong to the TaskSchedule's namespace: with OFFLOAD_AUTH=kubernetes they are
  // authorized there (the chart grants the controller runs in every namespace).
  if (ts.metadata.namespace) body.namespace = ts.metadata.namespace;
  return body;
}

function putSpec(api: ScheduleApi, ts: TaskSchedule, key: string): Promise<Schedule> {
  return api.putSchedule(key, scheduleBody(ts));
}

/** Whether the run API's schedule is what `spec` asks for (what the run API defaults counts as equal to unset). */
export function sameSpec(spec: TaskScheduleSpec, s: Schedule): boolean {
  return (
    spec.task === s.task &&
    spec.schedule === s.schedule &&
    // The run API stores an unset time zone as UTC: so removing spec.timeZone is a change when another was held.
    (spec.timeZone ?? "UTC") === s.timeZone &&
    jsonEqual(spec.parameters ?? null, s.parameters) &&
    spec.concurrencyPolicy === s.concurrencyPolicy &&
    spec.suspend === s.suspend &&
    (spec.startingDeadlineSeconds ?? null) === s.startingDeadlineSeconds &&
    // Unset is sent as unset, which the run API stores as null: a priority put there over HTTP is a change to put back.
    (spec.priority ?? null) === s.priority &&
    (spec.concurrencyKey ?? null) === s.concurrencyKey &&
    (spec.rateLimitKey ?? null) === s.rateLimitKey
  );
}

/** The TaskSchedule status that shows `schedule`, accepted for generation `og`. Pure. */
export function mirror(prev: TaskScheduleStatus, schedule: Schedule, og: { observedGeneration?: number }, now: Date): TaskScheduleStatus {
  const s: TaskScheduleStatus = { ...prev, ...og };
  // Kept when the run API has none (a schedule put again after it lost it): the last run did happen.
  if (schedule.lastScheduleTime) s.lastScheduleTime = schedule.lastScheduleTime;
  if (schedule.lastRunId) s.lastRunId = schedule.lastRunId;
  if (schedule.nextScheduleTime) s.nextScheduleTime = schedule.nextScheduleTime;
  else delete s.nextScheduleTime;
  const ready: ConditionUpdate = schedule.suspend
    ? { type: "Ready", status: "True", reason: "Suspended", message: "the run API holds the schedule, suspended: no runs start until spec.suspend is false", ...og }
    : { type: "Ready", status: "True", reason: "Scheduled", message: `the run API holds the schedule (${describe(schedule)})`, ...og };
  s.conditions = mergeConditions(prev.conditions, [ready], now);
  return s;
}

/** The schedule in a few words, for events and the Ready message (no times that change at every run). */
function describe(s: Schedule): string {
  return `"${s.schedule}" in ${s.timeZone}, task ${s.task}, ${s.concurrencyPolicy}${s.suspend ? ", suspended" : ""}`;
}

/**
 * When to read the schedule again: just after its next time (bounded both ways). A next time already past (the
 * run API's schedulers lag, or none runs) is read again after as long as it has been late, so a stalled
 * schedule is not polled every second.
 */
export function requeueAfter(deps: Pick<TaskScheduleDeps, "minRequeueMs" | "maxRequeueMs" | "now">, s: Schedule): number {
  if (!s.nextScheduleTime || s.suspend) return deps.maxRequeueMs;
  const ms = new Date(s.nextScheduleTime).getTime() + AFTER_NEXT_MS - deps.now().getTime();
  return Math.min(deps.maxRequeueMs, Math.max(deps.minRequeueMs, Math.abs(ms)));
}

function notFoundAsUndefined(err: unknown): undefined {
  // The run API lost it (a database reset, a DELETE over HTTP): the caller puts it again.
  if (err instanceof ApiError && err.status === 404) return undefined;
  throw err;
}

/**
 * Writes `next` unless it equals `prev`, then records the event (if any): an
 * event only once its status is in, so one that repeats on every retry of a
 * failing write is not recorded at each.
 */
async function write(
  deps: TaskScheduleDeps,
  raw: KubernetesObject,
  prev: TaskScheduleStatus,
  next: TaskScheduleStatus,
  subject?: EventSubject,
  reason?: string,
  note?: string,
): Promise<void> {
  const changed = !jsonEqual(next, prev);
  if (changed) {
    // A merge patch keeps a field it does not mention: one that `next` drops (the next time, once suspended) is sent as null.
    const patch: Record<string, unknown> = { ...next };
    for (const k of Object.keys(prev)) if ((next as Record<string, unknown>)[k] === undefined) patch[k] = null;
    deps.writes.wrote(raw, await deps.kube.patchStatus(TASKSCHEDULE.plural, raw.metadata?.namespace ?? "default", raw.metadata?.name ?? "", patch));
  }
  if (subject && reason && note && (changed || reason === "Restored")) {
    const type = reason === "Refused" || reason === "Invalid" ? "Warning" : "Normal";
    await deps.events.record(subject, type, reason, "Schedule", note);
  }
}
