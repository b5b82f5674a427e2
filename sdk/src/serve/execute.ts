/**
 * One run, from its task message to its ack: parse the message, skip the run
 * if it was cancelled, invoke the task (publishing RUNNING once it has run
 * for `runningEventDelayMs`), turn how the try ended into its terminal event
 * (storing a large result first), publish it, ack, then call the task's
 * hooks. The order is what makes a run safe to lose a worker over: the
 * message is acked only once the run's outcome is stored, and whatever cannot
 * be reported is released (nak) for JetStream to deliver again, so at worst
 * a run is tried again, never lost.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { parseTaskMessage, type RunError, type RunEvent, type TaskMessage } from "../protocol/index.js";
import { decideRetry } from "../retries.js";
import type { Task, TaskRunInfo } from "../task.js";
import type { Cancellations } from "./cancellations.js";
import { asError, type Ending } from "./ending.js";
import type { RunReporter } from "./events.js";
import type { Hooks } from "./hooks.js";
import type { RunInfo, RunLogLevel, RunOutcome } from "./index.js";
import { invoke } from "./invoke.js";
import { RELEASE_DELAY_MS } from "./pull.js";
import type { ResultStore } from "./results.js";
import { runLogger } from "./run-log.js";
import { settle } from "./settle.js";
import { ProgressCoalescer } from "./progress.js";
import { startRunSpan, type RunSpan } from "../tracing/run-span.js";
import type { Trigger } from "./trigger.js";

/** What running a message needs from the server that fetched it. */
export interface ExecuteDeps {
  readonly workerId: string;
  /** In-progress acks are sent every third of it. */
  readonly ackWaitSeconds: number;
  /** How long a run runs before its RUNNING is published (0: before the task is called, and required). */
  readonly runningEventDelayMs: number;
  readonly runLogLevel: RunLogLevel;
  readonly log: Logger;
  readonly cancellations: Pick<Cancellations, "knownCancelled" | "isCancelled" | "watchRun">;
  readonly reporter: Pick<RunReporter, "publish" | "logLine" | "publishProgress">;
  readonly results: Pick<ResultStore, "inlineFields" | "eventFields">;
  readonly hooks: Pick<Hooks, "runStarted" | "runFinished" | "task">;
}

/** The event that ends a try, and what to log about it. */
interface TerminalEvent {
  /** Also the run's outcome, as told to the runFinished hook. */
  readonly type: Extract<RunEvent["type"], RunOutcome>;
  readonly fields: Partial<RunEvent>;
  readonly retryInSeconds?: number;
}

/** Runs the run `msg` carries, to its ack or release. `abandoned` fires if the worker gives the run up. */
export async function execute(deps: ExecuteDeps, task: Task, msg: JsMsg, abandoned: Trigger): Promise<void> {
  const { reporter, hooks } = deps;
  let message: TaskMessage;
  try {
    message = parseTaskMessage(msg.string());
    if (message.task !== task.name) throw new Error(`message is for task "${message.task}", not "${task.name}"`);
  } catch (err) {
    deps.log.error({ err, task: task.name, subject: msg.subject, seq: msg.seq }, "malformed task message: dropped");
    await failMalformed(deps, task, msg, err);
    settle(() => msg.term("malformed task message"));
    return;
  }
  const info: RunInfo = { runId: message.runId, task: task.name, attempt: message.attemptsBefore + msg.info.deliveryCount };
  // The run's loggers are made when first used: a quiet run at the bench's (or production's warn) level never needs them.
  let runLogger_: Logger | undefined;
  const log = (): Logger => (runLogger_ ??= deps.log.child({ runId: info.runId, task: info.task, attempt: info.attempt }));
  // Watched from before the check, so that a cancel landing in between is not missed.
  const cancel = deps.cancellations.watchRun(info.runId);
  // In-progress acks keep the message ours for as long as the run takes.
  const working = setInterval(() => settle(() => msg.working()), (deps.ackWaitSeconds * 1000) / 3);
  // The try's span, once it has started, and how it ended (a try whose outcome could not be reported was abandoned).
  let span: RunSpan | undefined;
  let outcome: Parameters<RunSpan["end"]>[0] = "ABANDONED";
  let failure: Parameters<RunSpan["end"]>[1];
  // Publishes the run's RUNNING once it has run for the delay; cleared once the try ends, however it ends.
  let announceTimer: NodeJS.Timeout | undefined;
  try {
    // Nearly always known without asking NATS (the watch holds the bucket's ids): no await then.
    if (cancel.requested || (deps.cancellations.knownCancelled(info.runId) ?? (await deps.cancellations.isCancelled(info.runId, log)))) {
      // Never started: the run API has (or will have) marked it CANCELLED; the event covers an API that died in between.
      await reporter.publish(info, "CANCELLED", {}).catch((err: unknown) => log().warn({ err }, "could not publish CANCELLED"));
      settle(() => msg.ack());
      log().info("run cancelled before it started: not running it");
      return;
    }
    const startedAt = performance.now();
    // Sent with the outcome too: the replica that records the outcome may not have seen the RUNNING (nor, for a short run, was one sent).
    const started = { startedAt: new Date().toISOString() };
    // The RUNNING publish, once sent: the outcome waits for it, so that the two are stored in order.
    let running: Promise<void> | undefined;
    if (deps.runningEventDelayMs === 0) {
      try {
        await reporter.publish(info, "RUNNING", { at: started.startedAt });
        running = Promise.resolve();
      } catch (err) {
        log().error({ err }, "could not publish RUNNING; releasing the message");
        settle(() => msg.nak(1000));
        return;
      }
    }
    // Started already: a RUNNING that cannot be stored costs watchers a state, not the run (its outcome carries the start).
    const announce = (): Promise<void> =>
      (running ??= reporter.publish(info, "RUNNING", { at: started.startedAt }).catch((err: unknown) => log().warn({ err }, "could not publish RUNNING; the run goes on")));
    if (!running) announceTimer = setTimeout(() => void announce(), deps.runningEventDelayMs);
    hooks.runStarted(info);
    if (deps.log.isLevelEnabled("debug")) log().debug("run started");

    span = await startRunSpan(info, deps.workerId, message.traceContext);
    const logFields = span.logFields;
    // The run's own lines carry the trace, so that a log search finds them from the trace and back.
    let taskLog: Logger | undefined;
    const runLog = (): Logger =>
      (taskLog ??= runLogger(logFields ? log().child(logFields) : log(), deps.runLogLevel, info.attempt, (line) => reporter.logLine(info.runId, line)));
    let progress: ProgressCoalescer | undefined;
    const progressOf = (): ProgressCoalescer =>
      (progress ??= new ProgressCoalescer(
        // The run API keeps progress only of a RUNNING run: the first report announces the run, if the delay has not.
        async (p) => {
          await announce();
          await reporter.publishProgress(info, p);
        },
        (err) => log().warn({ err }, "could not publish a progress report; the next one replaces it"),
      ));
    const ending = await span.run(() => invoke({ task, message, info, log: runLog, workerId: deps.workerId, abandoned, cancel, progress: progressOf }));
    clearTimeout(announceTimer);
    // The last report goes before the outcome (the same subject keeps them in order); later ones are ignored.
    if (progress) await progress.close(ending.kind !== "abandoned");
    const durationSeconds = (performance.now() - startedAt) / 1000;
    if (ending.kind === "abandoned") {
      // Released for redelivery (as the next attempt) once this process's fetches have expired.
      settle(() => msg.nak(RELEASE_DELAY_MS));
      log().warn({ durationSeconds }, "run abandoned: the worker stopped before it finished; it will be redelivered");
      hooks.runFinished(info, "ABANDONED", durationSeconds);
      return;
    }

    let event: TerminalEvent;
    if (ending.kind === "completed") {
      try {
        event = { type: "COMPLETED", fields: deps.results.inlineFields(ending.json) ?? (await deps.results.eventFields(info, ending.json)) };
      } catch (err) {
        log().error({ err }, "could not store the result; releasing the message for redelivery");
        settle(() => msg.nak(1000));
        hooks.runFinished(info, "ABANDONED", durationSeconds);
        return;
      }
    } else {
      event = ending.kind === "cancelled" ? { type: "CANCELLED", fields: {} } : failureEvent(task, info.attempt, ending);
    }
    const { type, fields } = event;
    if (running) await running;
    try {
      await reporter.publish(info, type, { ...fields, ...started });
    } catch (err) {
      // Not acked: JetStream redelivers and the run is tried again.
      log().error({ err }, `could not publish ${type}; releasing the message for redelivery`);
      settle(() => msg.nak(1000));
      hooks.runFinished(info, "ABANDONED", durationSeconds);
      return;
    }
    settle(() => msg.ack());
    outcome = type;
    if (ending.kind === "failed") failure = { error: ending.error, thrown: ending.thrown };
    const error = ending.kind === "failed" ? ending.error : undefined;
    if (deps.log.isLevelEnabled("info")) logOutcome(log(), event, durationSeconds, error);
    hooks.runFinished(info, type, durationSeconds, error);

    if (ending.kind === "completed" && task.options.onCompletion) {
      const onCompletion = task.options.onCompletion.bind(task.options);
      const hookInfo = taskRunInfo(deps, info, message, runLog());
      hooks.task("onCompletion", log(), () => onCompletion(hookInfo, ending.value));
    } else if (type === "FAILED" && ending.kind === "failed" && task.options.onFailure) {
      const onFailure = task.options.onFailure.bind(task.options);
      const hookInfo = taskRunInfo(deps, info, message, runLog());
      hooks.task("onFailure", log(), () => onFailure(hookInfo, asError(ending.thrown, ending.error)));
    }
  } finally {
    clearTimeout(announceTimer);
    clearInterval(working);
    cancel.dispose();
    span?.end(outcome, failure);
  }
}

/** What a task's onCompletion/onFailure hook is told: the run, and its logger (what the hook logs goes to the run's log). */
function taskRunInfo(deps: ExecuteDeps, info: RunInfo, message: TaskMessage, log: Logger): TaskRunInfo {
  return { ...info, workerId: deps.workerId, parameters: message.parameters, log };
}

/** A failed try's event: AWAITING_RETRY with when the retry is due, or FAILED for good. */
function failureEvent(task: Task, attempt: number, ending: Extract<Ending, { kind: "failed" }>): TerminalEvent {
  const decision = decideRetry(task.options, attempt, ending.thrown);
  if (!decision.retry) return { type: "FAILED", fields: { error: ending.error } };
  // One clock reading for both, so that retryAt - at is the delay exactly.
  const now = Date.now();
  return {
    type: "AWAITING_RETRY",
    fields: { error: ending.error, at: new Date(now).toISOString(), retryAt: new Date(now + decision.delaySeconds * 1000).toISOString() },
    retryInSeconds: decision.delaySeconds,
  };
}

function logOutcome(log: Logger, { type, fields, retryInSeconds }: TerminalEvent, durationSeconds: number, error: RunError | undefined): void {
  if (type === "COMPLETED") log.info({ durationSeconds, ...(fields.resultRef ? { resultRef: fields.resultRef } : {}) }, "run completed");
  else if (type === "AWAITING_RETRY") log.info({ durationSeconds, error, retryInSeconds }, "run failed; retry due later");
  else if (type === "CANCELLED") log.info({ durationSeconds }, "run cancelled");
  else log.info({ durationSeconds, error }, "run failed");
}

// A run id is what the dispatch's message id starts with (`<runId>` or `<runId>.<n>`).
const RUN_ID_IN_MSG_ID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\.\d+)?$/i;

/**
 * A message no worker can run is dropped, but its run must not wait forever
 * for an outcome: when the message id names the run, the run is failed with
 * the reason. (Only a buggy producer sends such a message.)
 */
async function failMalformed(deps: ExecuteDeps, task: Task, msg: JsMsg, err: unknown): Promise<void> {
  const runId = RUN_ID_IN_MSG_ID.exec(msg.headers?.get("Nats-Msg-Id") ?? "")?.[1];
  if (!runId) return;
  const error: RunError = { type: "MalformedTaskMessage", message: `the run's task message could not be read: ${err instanceof Error ? err.message : String(err)}` };
  const info: RunInfo = { runId, task: task.name, attempt: msg.info.deliveryCount };
  await deps.reporter.publish(info, "FAILED", { error }).catch((e: unknown) => deps.log.warn({ err: e, runId }, "could not fail the run of a malformed message"));
}
