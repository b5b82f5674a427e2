import type { KV } from "@nats-io/kv";
import { isTerminal, type Cancellation, type Run } from "@offload/sdk/internal";
import type { Db } from "../store/db.js";
import type { Logger } from "pino";
import { getRun, markPending } from "../store/runs.js";
import { cancelWaitingRun, retryFailedRun } from "../store/transitions.js";
import type { Admission } from "./admission.js";
import { publishRuns, type DispatchBus } from "./publisher.js";

/** What a cancel request did. */
export type CancelOutcome =
  /** No worker had started it: it is `CANCELLED` now. */
  | { kind: "cancelled"; run: Run }
  /** A worker is running it: asked to stop; the worker's `CANCELLED` event will end it. */
  | { kind: "requested"; run: Run }
  /** It had already finished `COMPLETED` or `FAILED`: nothing changed. */
  | { kind: "finished"; run: Run }
  | { kind: "not-found" };

/**
 * Cancels a run. The id goes into the cancellations bucket first, then the
 * record changes: the bucket is what workers obey (they check it before
 * starting a run and watch it while running one), so once it holds the id no
 * worker starts the run, whatever happens to this process next.
 */
export async function cancelRun(deps: { db: Db; cancellations: KV }, id: string): Promise<CancelOutcome> {
  const before = await getRun(deps.db, id);
  if (!before) return { kind: "not-found" };
  // Cancelling twice is not an error: what was asked for holds.
  if (before.state === "CANCELLED") return { kind: "cancelled", run: before };
  if (isTerminal(before.state)) return { kind: "finished", run: before };
  const value: Cancellation = { cancelledAt: new Date().toISOString() };
  await deps.cancellations.put(id, JSON.stringify(value));
  const cancelled = await cancelWaitingRun(deps.db, id);
  if (cancelled) return { kind: "cancelled", run: cancelled };
  // It was (or has just become) RUNNING, or finished meanwhile.
  const now = (await getRun(deps.db, id))!;
  if (now.state === "CANCELLED") return { kind: "cancelled", run: now };
  return isTerminal(now.state) ? { kind: "finished", run: now } : { kind: "requested", run: now };
}

/**
 * Gives a `FAILED` run its next dispatch (see {@link retryFailedRun}); answers undefined when it is not `FAILED`.
 * Recorded first, then published and marked `PENDING` as a new run is; a publish that fails leaves it `SCHEDULED`
 * for the sweeper (the retry is recorded either way), and the answer says so. A run of a limited task waits for admission like a new one.
 */
export async function retryRun(deps: DispatchBus & { db: Db; admission?: Admission | undefined; log: Logger }, id: string): Promise<Run | undefined> {
  const hold = (task: string): boolean => deps.admission?.holds(task) ?? false;
  const stored = await retryFailedRun(deps.db, id, hold);
  if (!stored) return undefined;
  if (hold(stored.run.task)) {
    deps.admission?.trigger(stored.run.task);
    return stored.run;
  }
  const { published, failed } = await publishRuns(deps, [stored]);
  if (failed.length) {
    deps.log.warn({ err: failed[0], runId: id }, "could not publish the retry; the sweeper will");
    return stored.run;
  }
  const moved = await markPending(deps.db, published).catch((err: unknown) => {
    deps.log.warn({ err, runId: id }, "could not mark the retry PENDING; the sweeper will");
    return new Map<string, string>();
  });
  // Published, so the answer says PENDING, as it always has: a quick try may already have ended (its outcome
  // recorded before the mark, which then moved nothing), and a read says so; the answer is what the retry did.
  return { ...stored.run, state: "PENDING", updatedAt: moved.get(id) ?? stored.run.updatedAt };
}
