import type { SystemUnderTest } from "../systems/system.js";
import { nowMs } from "../clock.js";
import { perSecond, round, summarize } from "../stats.js";
import type { Progress } from "./progress.js";
import type { AcceptResult, BatchResult } from "./types.js";

/**
 * `calls` runs submitted one at a time by `callers` concurrent callers (each
 * awaits its call before making the next) to the idle lane, after `warmup`
 * unmeasured ones.
 */
export async function measureAccept(sys: SystemUnderTest, o: { calls: number; callers: number; warmup: number }, progress: Progress): Promise<AcceptResult> {
  for (let i = 0; i < o.warmup; i++) await sys.submitOne("idle", -1 - i);
  const samples: number[] = [];
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < o.calls) {
      const i = next++;
      const t = nowMs();
      await sys.submitOne("idle", i);
      samples.push(nowMs() - t);
      progress.tick(samples.length);
    }
  };
  const t0 = nowMs();
  await Promise.all(Array.from({ length: Math.min(o.callers, o.calls) }, loop));
  const wallMs = nowMs() - t0;
  return { callers: o.callers, calls: o.calls, warmup: o.warmup, wallMs: round(wallMs), perSec: perSecond(o.calls, wallMs), callMs: summarize(samples) };
}

/** `batches` batches of `batchSize` runs to the idle lane, one after another. */
export async function measureBatch(sys: SystemUnderTest, o: { batchSize: number; batches: number }, progress: Progress): Promise<BatchResult> {
  const warmup = Math.min(o.batchSize, 100);
  await sys.submitBatch("idle", -o.batchSize, warmup); // unmeasured
  const samples: number[] = [];
  const t0 = nowMs();
  for (let b = 0; b < o.batches; b++) {
    const t = nowMs();
    await sys.submitBatch("idle", b * o.batchSize, o.batchSize);
    samples.push(nowMs() - t);
    progress.tick((b + 1) * o.batchSize);
  }
  const wallMs = nowMs() - t0;
  return { batchSize: o.batchSize, batches: o.batches, warmup, perSec: perSecond(o.batchSize * o.batches, wallMs), batchMs: summarize(samples) };
}
