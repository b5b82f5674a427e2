import { z } from "zod";

/**
 * A task name: lowercase letters, digits, `-` and `_`, starting with a letter
 * or digit, at most 64 characters. It becomes a NATS subject token and part of
 * a consumer name, which is why dots, wildcards and spaces are not allowed.
 */
export const TaskNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/, "a task name uses lowercase letters, digits, '-' and '_', and starts with a letter or digit");

/** Whether `name` is a valid task name, as {@link TaskNameSchema} says, without zod's cost (a worker checks one per run). */
export function isTaskName(name: unknown): name is string {
  return typeof name === "string" && name.length >= 1 && name.length <= 64 && TASK_NAME.test(name);
}
const TASK_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** Streams, subjects and consumers: the NATS layout every part agrees on. */
export const Nats = {
  /** Work-queue stream holding one message per dispatch of a run. */
  tasksStream: "OFFLOAD_TASKS",
  /** Stream of run events published by workers and materialized by the run API. */
  eventsStream: "OFFLOAD_EVENTS",
  /** Object store bucket for results larger than the inline limit. */
  resultsBucket: "offload-results",
  taskSubject: (task: string): string => `offload.tasks.${task}`,
  tasksWildcard: "offload.tasks.>",
  eventSubject: (task: string): string => `offload.events.${task}`,
  eventsWildcard: "offload.events.>",
  /** Durable pull consumer shared by every process serving `task`. */
  taskConsumer: (task: string): string => `offload-task-${task}`,
  /** Durable consumer shared by every run API replica to materialize events. */
  eventsConsumer: "offload-api-events",
  /**
   * KV bucket of cancelled runs (key: run id). The run API writes it on cancel;
   * workers check it before starting a run and watch it to abort running ones.
   */
  cancelBucket: "offload-cancellations",
  /** Stream of run log lines, one subject per run, bounded per subject. */
  logsStream: "OFFLOAD_LOGS",
  logSubject: (runId: string): string => `offload.logs.${runId}`,
  logsWildcard: "offload.logs.>",
  /** JetStream's advisory when a task message reached its consumer's max deliveries. */
  maxDeliveriesAdvisory: "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.OFFLOAD_TASKS.*",
  /**
   * Core (non-stream) subject, no payload: the run API's "there is new work"
   * for `task` after it publishes runs of it. Idle workers wake on it instead
   * of on copies of every task message.
   */
  nudgeSubject: (task: string): string => `offload.nudge.${task}`,
  /** Core (non-stream) subject on which workers announce themselves, for `GET /v1/tasks`. */
  heartbeatSubject: (task: string): string => `offload.heartbeat.${task}`,
  heartbeatWildcard: "offload.heartbeat.>",
  /**
   * Core request subject on which a worker registers the definitions of the
   * tasks it serves (`TaskRegistration`); every run API replica subscribes,
   * stores them and answers.
   */
  registerSubject: "offload.register",
  /**
   * The `Nats-Msg-Id` of a run's dispatch. The first dispatch uses the run id
   * itself (so a double publish after a crash is dropped by JetStream); a later
   * dispatch of the same run (a retry) gets a suffix so that it is not.
   */
  dispatchMsgId: (runId: string, dispatch: number): string => (dispatch === 0 ? runId : `${runId}.${dispatch}`),
} as const;
