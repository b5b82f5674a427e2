import { performance } from "node:perf_hooks";
import type { BenchTasks } from "../tasks.js";
import { round, summarize, type Summary } from "../stats.js";

/** Single runs one after another: `delay()` then `result()`, each through an otherwise idle worker. */
export interface E2eResult {
  runs: number;
  workers: number;
  concurrency: number;
  /** delay() → result() in hand. */
  totalMs: Summary;
  /** The delay() part alone. */
  delayMs: Summary;
  wallMs: number;
}

export async function measureE2e(tasks: BenchTasks, runs: number, warmup: number, workers: number, concurrency: number): Promise<E2eResult> {
  const one = async (i: number): Promise<[number, number]> => {
    const t = performance.now();
    const run = await tasks.add.delay({ a: i, b: 1 });
    const delayed = performance.now();
    const { sum } = await run.result({ timeoutSeconds: 30 });
    if (sum !== i + 1) throw new Error(`e2e: add(${i}, 1) answered ${sum}`);
    return [performance.now() - t, delayed - t];
  };
  for (let i = 0; i < Math.min(warmup, 20); i++) await one(i);
  const total: number[] = [];
  const delay: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    const [all, d] = await one(i);
    total.push(all);
    delay.push(d);
  }
  return { runs, workers, concurrency, totalMs: summarize(total), delayMs: summarize(delay), wallMs: round(performance.now() - t0) };
}
