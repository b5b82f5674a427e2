import { setTimeout as sleep } from "node:timers/promises";
import type { RunTimes, SystemUnderTest } from "../systems/system.js";
import { nowMs } from "../clock.js";
import { perSecond, round, summarize } from "../stats.js";
import type { Progress } from "./progress.js";
import type { FlowResult } from "./types.js";

interface Sent {
  /** id → when the system accepted it. */
  accepted: Map<string, number>;
  callMs: number[];
  t0: number;
  lastAcceptedAt: number;
  maxSendLagMs?: number;
}

/** `runs` runs to the work lane in batches of `batchSize`, one batch after another, as fast as the system takes them. */
export async function measureFlatOut(sys: SystemUnderTest, o: { runs: number; batchSize: number; timeoutMs: number }, progress: Progress): Promise<FlowResult> {
  const sent: Sent = { accepted: new Map(), callMs: [], t0: nowMs(), lastAcceptedAt: 0 };
  progress.phase("flat out: submitted", o.runs);
  for (let from = 0; from < o.runs; from += o.batchSize) {
    const t = nowMs();
    const ids = await sys.submitBatch("work", from, Math.min(o.batchSize, o.runs - from));
    const at = nowMs();
    sent.callMs.push(at - t);
    for (const id of ids) sent.accepted.set(id, at);
    sent.lastAcceptedAt = at;
    progress.tick(sent.accepted.size);
  }
  return follow(sys, sent, o.timeoutMs, progress, "flat out");
}

/**
 * An open loop at `perSec` for `seconds`: one `submitOne` per tick of a fixed
 * schedule, each sent without waiting for the ones before, so a slow system
 * meets the load it was offered rather than a slower one (no coordinated
 * omission). When the sender falls behind it catches up at once, and says by
 * how much it fell behind.
 */
export async function measureOffered(sys: SystemUnderTest, o: { perSec: number; seconds: number; timeoutMs: number }, progress: Progress): Promise<FlowResult> {
  const runs = Math.max(1, Math.round(o.perSec * o.seconds));
  const interval = 1000 / o.perSec;
  const sent: Sent = { accepted: new Map(), callMs: [], t0: nowMs(), lastAcceptedAt: 0, maxSendLagMs: 0 };
  const label = `${o.perSec} runs/s offered`;
  progress.phase(`${label}: accepted`, runs);
  const calls: Promise<void>[] = [];
  let failure: unknown;
  for (let k = 0; k < runs && failure === undefined; k++) {
    const due = sent.t0 + k * interval;
    const wait = due - nowMs();
    if (wait >= 1) await sleep(wait);
    const t = nowMs();
    sent.maxSendLagMs = Math.max(sent.maxSendLagMs ?? 0, t - due);
    calls.push(
      sys.submitOne("work", k).then(
        (id) => {
          const at = nowMs();
          sent.callMs.push(at - t);
          sent.accepted.set(id, at);
          sent.lastAcceptedAt = Math.max(sent.lastAcceptedAt, at);
          progress.tick(sent.accepted.size);
        },
        (err: unknown) => {
          failure ??= err;
        },
      ),
    );
  }
  await Promise.all(calls);
  if (failure !== undefined) throw failure;
  const result = await follow(sys, sent, o.timeoutMs, progress, label);
  return { ...result, offeredPerSec: o.perSec, maxSendLagMs: round(sent.maxSendLagMs ?? 0) };
}

/** Waits for every sent run to complete and turns the times into the result. */
async function follow(sys: SystemUnderTest, sent: Sent, timeoutMs: number, progress: Progress, label: string): Promise<FlowResult> {
  const ids = [...sent.accepted.keys()];
  progress.phase(`${label}: completed`, ids.length);
  const times = await sys.awaitCompleted(ids, { timeoutMs, onProgress: (n) => progress.tick(n) });
  // The phase's last line, also when every run completed before the first progress probe (a quick system, a small run).
  progress.tick(times.size);
  const toStart: number[] = [];
  const toCompleted: number[] = [];
  const recordLag: number[] = [];
  let lastCompletedAt = 0;
  for (const [id, acceptedAt] of sent.accepted) {
    const t: RunTimes | undefined = times.get(id);
    if (!t) throw new Error(`${sys.name}: no times for run ${id}`);
    toStart.push(t.startedAt - acceptedAt);
    toCompleted.push(t.completedAt - acceptedAt);
    if (t.workerFinishedAt !== undefined) recordLag.push(t.completedAt - t.workerFinishedAt);
    lastCompletedAt = Math.max(lastCompletedAt, t.completedAt);
  }
  const completedMs = lastCompletedAt - sent.t0;
  const submitMs = sent.lastAcceptedAt - sent.t0;
  return {
    runs: ids.length,
    submitMs: round(submitMs),
    acceptedPerSec: perSecond(ids.length, submitMs),
    callMs: summarize(sent.callMs),
    completedMs: round(completedMs),
    completedPerSec: perSecond(ids.length, completedMs),
    toStartMs: summarize(toStart),
    toCompletedMs: summarize(toCompleted),
    ...(recordLag.length ? { recordLagMs: summarize(recordLag) } : {}),
  };
}
