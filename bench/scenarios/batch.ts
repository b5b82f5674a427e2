import { performance } from "node:perf_hooks";
import type { BenchTasks } from "../tasks.js";
import { perSecond, round, summarize, type Summary } from "../stats.js";

/** `map()` calls, one after another: each is one `POST /v1/runs/batch`. */
export interface BatchResult {
  batchSize: number;
  batches: number;
  totalMs: number;
  runsPerSec: number;
  /** Per `map()` call, including the SDK's input validation. */
  batchMs: Summary;
}

export async function measureBatch(tasks: BenchTasks, batchSize: number, batches: number): Promise<BatchResult> {
  const inputs = Array.from({ length: batchSize }, (_, i) => ({ i }));
  // One small unmeasured call first: connections, JIT, prepared statements.
  await tasks.noop.map(inputs.slice(0, 10));
  const samples: number[] = [];
  const t0 = performance.now();
  for (let b = 0; b < batches; b++) {
    const t = performance.now();
    const handles = await tasks.noop.map(inputs);
    samples.push(performance.now() - t);
    if (handles.length !== batchSize) throw new Error(`map() of ${batchSize} answered ${handles.length} handles`);
  }
  const totalMs = performance.now() - t0;
  return { batchSize, batches, totalMs: round(totalMs), runsPerSec: perSecond(batchSize * batches, totalMs), batchMs: summarize(samples) };
}
