import type { NatsConnection } from "@nats-io/transport-node";
import { inSpan, JetStreamPublisher, Nats, type TaskMessage } from "@offload/sdk/internal";
import type { StoredRun } from "../store/runs.js";
import type { NatsLink } from "./connection.js";

/** The instrumentation scope of the run API's spans. */
export const OPERATOR_TRACER = "@offload/operator";

/** The task message of a run's next dispatch. */
export function taskMessage({ run, dispatch, timeoutSeconds }: StoredRun): TaskMessage {
  const msg: TaskMessage = { runId: run.id, task: run.task, parameters: run.parameters, attemptsBefore: run.attempts, dispatch };
  if (timeoutSeconds !== null) msg.timeoutSeconds = timeoutSeconds;
  // From the record, so that every dispatch (retries, the sweeper's republish) continues the caller's trace.
  if (run.traceContext) msg.traceContext = run.traceContext;
  return msg;
}

/** What dispatching needs: the connection task messages (through its {@link JetStreamPublisher}) and nudges go on, and its status. */
export interface DispatchBus {
  readonly nc: NatsConnection;
  /** The connection's status: publishes fail at once while it is down. */
  readonly link: NatsLink;
}

/**
 * How long JetStream may take to confirm a publish. Long on purpose: a
 * confirmation that is merely slow (a busy server, a batch of thousands) should
 * not be taken for a failure; a lost connection fails publishes at once anyway.
 */
export const PUBLISH_TIMEOUT_MS = 10_000;

/**
 * Publishes one task message per run on `offload.tasks.<task>`, all in flight
 * at once (a batch of thousands takes one round trip's worth of time, not
 * thousands), through the connection's one {@link JetStreamPublisher}. The message id makes a second publish of the same
 * dispatch a no-op for JetStream. While the connection is down (or once it is lost
 * mid-publish) a publish fails at once rather than after the timeout. Answers the ids of the runs that were published; the
 * others wait (in the dispatch outbox, or `SCHEDULED`) and the sweeper tries them again. Then nudges
 * the idle workers of each task that got work.
 */
export async function publishRuns(bus: DispatchBus, runs: readonly StoredRun[]): Promise<{ published: string[]; failed: unknown[] }> {
  // Within the submit span when there is one; a dispatch by the sweeper (a retry, a republish) joins the run's trace.
  const tasks = new Set(runs.map((r) => r.run.task));
  const attributes = {
    "messaging.system": "nats",
    "messaging.operation.type": "send",
    "offload.runs": runs.length,
    ...(tasks.size === 1 ? { "offload.task": runs[0]!.run.task, "messaging.destination.name": Nats.taskSubject(runs[0]!.run.task) } : {}),
    ...(runs.length === 1 ? { "offload.run.id": runs[0]!.run.id, "offload.dispatch": runs[0]!.dispatch } : {}),
  };
  return inSpan(OPERATOR_TRACER, "offload.dispatch", { kind: "producer", attributes, parent: runs[0]?.run.traceContext }, async (span) => {
    const done = await publish(bus, runs);
    span.setAttributes({ "offload.published": done.published.length, "offload.failed": done.failed.length });
    return done;
  });
}

// One publisher per connection, made on its first dispatch: every path that dispatches (submit, sweeper, admission,
// retry) shares its reply subscription and timer sweep.
const publishers = new WeakMap<NatsConnection, JetStreamPublisher>();
function publisherFor(nc: NatsConnection): JetStreamPublisher {
  let p = publishers.get(nc);
  if (!p) publishers.set(nc, (p = new JetStreamPublisher(nc, { timeoutMs: PUBLISH_TIMEOUT_MS })));
  return p;
}

async function publish(bus: DispatchBus, runs: readonly StoredRun[]): Promise<{ published: string[]; failed: unknown[] }> {
  const publisher = publisherFor(bus.nc);
  const results = await bus.link.settleWhileConnected(
    runs.map(
      (r) => () =>
        publisher.publish(Nats.taskSubject(r.run.task), JSON.stringify(taskMessage(r)), { msgID: Nats.dispatchMsgId(r.run.id, r.dispatch) }),
    ),
  );
  const published: string[] = [];
  const failed: unknown[] = [];
  const tasks = new Set<string>();
  results.forEach((res, i) => {
    if (res.status === "rejected") return void failed.push(res.reason);
    published.push(runs[i]!.run.id);
    tasks.add(runs[i]!.run.task);
  });
  nudge(bus.nc, tasks);
  return { published, failed };
}

// A nudge is a hint, never the only way work is found (idle workers also check
// their consumer every few seconds): a lost one costs latency, not a run.
function nudge(nc: NatsConnection, tasks: Iterable<string>): void {
  for (const task of tasks) {
    try {
      nc.publish(Nats.nudgeSubject(task));
    } catch {
      // closed or draining: the workers' own checks will find the work
    }
  }
}
