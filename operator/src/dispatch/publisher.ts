import type { JetStreamClient } from "@nats-io/jetstream";
import { Nats, type TaskMessage } from "@offload/sdk/internal";
import type { StoredRun } from "../store/runs.js";

/** The task message of a run's next dispatch. */
export function taskMessage({ run, dispatch, timeoutSeconds }: StoredRun): TaskMessage {
  const msg: TaskMessage = { runId: run.id, task: run.task, parameters: run.parameters, attemptsBefore: run.attempts, dispatch };
  if (timeoutSeconds !== null) msg.timeoutSeconds = timeoutSeconds;
  return msg;
}

/**
 * Publishes one task message per run on `offload.tasks.<task>`, all in flight
 * at once (a batch of thousands takes one round trip's worth of time, not
 * thousands). The message id makes a second publish of the same dispatch a
 * no-op for JetStream. Answers the ids of the runs that were published; the
 * others stay `SCHEDULED` and the sweeper tries them again.
 */
export async function publishRuns(js: JetStreamClient, runs: readonly StoredRun[]): Promise<{ published: string[]; failed: unknown[] }> {
  const results = await Promise.allSettled(
    runs.map((r) =>
      js.publish(Nats.taskSubject(r.run.task), JSON.stringify(taskMessage(r)), {
        msgID: Nats.dispatchMsgId(r.run.id, r.dispatch),
        timeout: 10_000,
      }),
    ),
  );
  const published: string[] = [];
  const failed: unknown[] = [];
  results.forEach((res, i) => (res.status === "fulfilled" ? published.push(runs[i]!.run.id) : failed.push(res.reason)));
  return { published, failed };
}

/** Publishes one run's dispatch; rejects when JetStream does not confirm it. */
export async function publishRun(js: JetStreamClient, run: StoredRun): Promise<void> {
  const { failed } = await publishRuns(js, [run]);
  if (failed.length) throw failed[0];
}
