import { performance } from "node:perf_hooks";
import type { BenchTasks } from "../tasks.js";
import { perSecond, round, summarize, type Summary } from "../stats.js";

/** `delay()` calls by `callers` concurrent callers: each call is one `POST /v1/runs`. */
export interface DelayLatency {
  callers: number;
  calls: number;
  errors: number;
  firstError?: string;
  wallMs: number;
  reqPerSec: number;
  latencyMs: Summary;
}

/**
 * Times `calls` `delay()`s of a task no worker serves (so the API alone is
 * measured), shared by `callers` loops that each await one call at a time.
 */
export async function measureDelay(tasks: BenchTasks, calls: number, callers: number, warmup: number): Promise<DelayLatency> {
  for (let i = 0; i < warmup; i++) await tasks.noop.delay({ i });
  const samples: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      const t = performance.now();
      try {
        await tasks.noop.delay({ i });
        samples.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= String(err);
        if (errors > Math.max(10, calls / 10)) throw new Error(`too many failed delay() calls (${errors}); first: ${firstError}`);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(callers, calls) }, loop));
  const wallMs = performance.now() - t0;
  return {
    callers,
    calls,
    errors,
    ...(firstError ? { firstError } : {}),
    wallMs: round(wallMs),
    reqPerSec: perSecond(samples.length, wallMs),
    latencyMs: summarize(samples),
  };
}
