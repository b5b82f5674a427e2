import { performance } from "node:perf_hooks";

/**
 * Milliseconds since the epoch with sub-millisecond resolution. Every process of
 * a bench run is on this one host, so stamps taken in different processes
 * (`performance.timeOrigin + performance.now()` there too) can be subtracted.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
