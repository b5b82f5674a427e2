/**
 * Issue 15's targets ("Performance: level with BullMQ on the same machine")
 * next to what this run measured, for each Offload system: the value, the
 * ratio where the target is one, and whether it is met. It prints; it asserts
 * nothing.
 */
import { cpuMsPerRun, medianOver, peakRssMiB } from "./measures.js";
import { parseOptions, type BenchOptions } from "./options.js";
import type { SystemResults } from "./report.js";
import { isOffload, OFFLOAD_SYSTEMS, type OffloadSystemName } from "./systems/system.js";
import { formatTable, type Cell } from "./table.js";
import type { FlowResult } from "./workloads/types.js";

/** The offered rate the latency targets are set at. */
const TARGET_RATE = 500;
const MB = 1e6;

/** One target of the issue, measured for one Offload system. */
export interface TargetResult {
  target: string;
  system: OffloadSystemName;
  /** What was measured, e.g. `741/s vs 5,216/s = 0.14x`, or why nothing was (`no bullmq in --systems`). */
  measured: string;
  /** Undefined when it could not be measured in this run. */
  met?: boolean;
}

type Value = (s: SystemResults) => number | undefined;

interface Target {
  target: string;
  /** Measures one Offload system (`name`) against the bar. */
  measure(shown: readonly SystemResults[], name: OffloadSystemName): Omit<TargetResult, "target" | "system">;
}

const offeredAt = (s: SystemResults): FlowResult | undefined => s.workloads.offered.find((f) => f.offeredPerSec === TARGET_RATE);

/** Offload's value at least (or at most) `bar` times BullMQ's. */
function againstBullmq(target: string, value: Value, bar: number, higherIsBetter: boolean, unit: string): Target {
  return {
    target,
    measure(shown, name) {
      const mine = medianOver(shown, name, value);
      const peer = medianOver(shown, "bullmq", value);
      if (mine === undefined) return { measured: "not measured (--only)" };
      if (peer === undefined) return { measured: `${num(mine)}${unit}; no bullmq to divide by` };
      const x = mine / peer;
      return { measured: `${num(mine)}${unit} vs ${num(peer)}${unit} = ${x.toFixed(2)}x`, met: higherIsBetter ? x >= bar : x <= bar };
    },
  };
}

/** Below an absolute bar. */
function below(target: string, value: Value, bar: number, show: (v: number) => string): Target {
  return {
    target,
    measure(shown, name) {
      const v = medianOver(shown, name, value);
      return v === undefined ? { measured: "not measured (--only, --rates)" } : { measured: show(v), met: v < bar };
    },
  };
}

const TARGETS: readonly Target[] = [
  againstBullmq("flat out, completed/s: >= 1.0x BullMQ", (s) => s.workloads.flatOut?.completedPerSec, 1, true, "/s"),
  againstBullmq("delay() by concurrent callers, accepted/s: >= 1.0x BullMQ", (s) => s.workloads.accept?.perSec, 1, true, "/s"),
  below(`at ${TARGET_RATE} runs/s offered: accepted -> completed p99 < 10 ms`, (s) => offeredAt(s)?.toCompletedMs.p99, 10, (v) => `${num(v)} ms`),
  below(`at ${TARGET_RATE} runs/s offered: delay() p99 < 5 ms`, (s) => offeredAt(s)?.callMs.p99, 5, (v) => `${num(v)} ms`),
  againstBullmq("CPU per run, all its processes: <= 1.5x BullMQ", cpuMsPerRun, 1.5, false, " ms"),
  below("peak RSS of the run API < 150 MB", (s) => peakRssMiB(s, "offload-api"), 150 * (MB / 2 ** 20), (v) => `${num((v * 2 ** 20) / MB)} MB`),
  below("peak RSS of one worker < 100 MB", (s) => peakRssMiB(s, "worker"), 100 * (MB / 2 ** 20), (v) => `${num((v * 2 ** 20) / MB)} MB`),
];

/** The targets for each Offload system, in the order; none when no Offload system ran. */
export function measureTargets(shown: readonly SystemResults[]): TargetResult[] {
  if (!shown.some((s) => isOffload(s.name))) return [];
  const ran = (name: OffloadSystemName): boolean => shown.some((s) => s.name === name);
  const out: TargetResult[] = TARGETS.flatMap((t) =>
    OFFLOAD_SYSTEMS.map((system) => ({ target: t.target, system, ...(ran(system) ? t.measure(shown, system) : { measured: "not in --systems" }) })),
  );
  // The last target: Offload on PGlite is in the bench, flat out and at 500/s, with its own row.
  const pglite = shown.filter((s) => s.name === "offload-pglite");
  const both = pglite.some((s) => s.workloads.flatOut !== undefined && offeredAt(s) !== undefined);
  out.push({
    target: `PGlite measured flat out and at ${TARGET_RATE}/s`,
    system: "offload-pglite",
    measured: both ? "yes, its own column" : pglite.length ? `not both (--only, --rates)` : "offload-pglite not in --systems",
    met: both,
  });
  return out;
}

/** The targets as one table: a row per target, a value and a verdict column per Offload system. */
export function formatTargets(results: readonly TargetResult[], options: Omit<BenchOptions, "out">): string {
  const systems = OFFLOAD_SYSTEMS;
  const rows: Cell[][] = [...new Set(results.map((r) => r.target))].map((target) => [
    target,
    ...systems.flatMap((name) => {
      const r = results.find((x) => x.target === target && x.system === name);
      return r ? [r.measured, r.met === undefined ? "-" : r.met ? "yes" : "NO"] : ["", ""];
    }),
  ]);
  const header = ["target (issue 15)", ...systems.flatMap((n) => [n, "met"])];
  const notes = [
    "  Values are medians over the passes; ratios are of the medians. CPU per run: the CPU seconds of the system's own processes",
    "  (servers, database, workers; not the bench client) over every run submitted to it, warm-ups and the idle lane's included.",
    "  The issue sets its targets for Offload; offload-pglite is held to the same bars for comparison. MB = 10^6 bytes.",
  ];
  const changed = differsFromDefaults(options);
  if (changed.length) notes.push(`  The issue's targets are for a run with the defaults; this one set ${changed.join(", ")}.`);
  return [formatTable("Issue 15's targets, as measured in this run", header, rows), ...notes].join("\n");
}

/** The flags of an option whose name is not its flag's. */
const FLAGS: Partial<Record<keyof BenchOptions, string>> = { batchSize: "batch-size", seconds: "duration", timeoutSeconds: "timeout" };

/**
 * The sizes that differ from the defaults, as the flags that set them
 * (`--runs 1000`). Left out: what does not change the work (--profile,
 * --log-level, --out), --repeat (medians of default runs), and --systems.
 */
function differsFromDefaults(o: Omit<BenchOptions, "out">): string[] {
  const d = parseOptions([]);
  if (d === "help") return [];
  const ignored = new Set<string>(["profile", "logLevel", "repeat", "systems"]);
  return Object.entries(o).flatMap(([k, v]) =>
    !ignored.has(k) && JSON.stringify(v) !== JSON.stringify(d[k as keyof typeof d]) ? [`--${FLAGS[k as keyof BenchOptions] ?? k} ${String(v)}`] : [],
  );
}

/** 5,216 / 741 / 63.4 / 1.93 */
function num(v: number): string {
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString("en-US") : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}
