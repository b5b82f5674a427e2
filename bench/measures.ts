/**
 * Numbers derived from one pass of one system, shared by the printed tables
 * and the targets: how many runs it was given, the CPU its own processes spent
 * on them, its peak memory; and a metric's median over the passes.
 */
import { median } from "./stats.js";
import type { SystemName } from "./systems/system.js";
import type { SystemResults } from "./report.js";

/** The bench's own CPU, in `cpuSeconds`: not the system's. */
export const CLIENT = "bench (client)";

/**
 * Every run submitted to the system while its CPU was measured: warm-ups
 * included, the idle lane's (accepted and recorded, never run) as well as the
 * work lane's. Every system gets the same workloads, so the same count.
 */
export function runsSubmitted(s: SystemResults): number | undefined {
  const w = s.workloads;
  const n =
    (w.accept ? w.accept.warmup + w.accept.calls : 0) +
    (w.batch ? w.batch.warmup + w.batch.batches * w.batch.batchSize : 0) +
    (w.flatOut?.runs ?? 0) +
    w.offered.reduce((sum, f) => sum + f.runs, 0);
  return n > 0 ? n : undefined;
}

/** CPU seconds of the system's own processes (servers, database, workers) during the workloads, the bench client left out. */
export function systemCpuSeconds(s: SystemResults): number | undefined {
  const own = Object.entries(s.cpuSeconds).filter(([component]) => component !== CLIENT);
  return own.length ? own.reduce((sum, [, v]) => sum + v, 0) : undefined;
}

/** CPU milliseconds of the system's own processes per run submitted. */
export function cpuMsPerRun(s: SystemResults): number | undefined {
  const cpu = systemCpuSeconds(s);
  const runs = runsSubmitted(s);
  return cpu === undefined || runs === undefined ? undefined : (cpu * 1000) / runs;
}

/** Peak RSS in MiB of the largest process of `component` (`worker`: the largest worker). */
export function peakRssMiB(s: SystemResults, component: string): number | undefined {
  const sizes = s.processes.filter((p) => p.component === component).map((p) => p.peakRssBytes / 2 ** 20);
  return sizes.length ? Math.max(...sizes) : undefined;
}

/** A metric's median over the passes of system `name` that measured it (`--repeat`); undefined if none did. */
export function medianOver(shown: readonly SystemResults[], name: SystemName, value: (s: SystemResults) => number | undefined): number | undefined {
  return median(
    shown
      .filter((s) => s.name === name)
      .map(value)
      .filter((v): v is number => v !== undefined && Number.isFinite(v)),
  );
}
