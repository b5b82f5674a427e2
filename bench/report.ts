import { versionsLine, type Conditions } from "./conditions.js";
import { CLIENT, cpuMsPerRun, medianOver, peakRssMiB, runsSubmitted, systemCpuSeconds } from "./measures.js";
import type { BenchOptions } from "./options.js";
import { formatProfile, type ProfileSummary, type ProfileWindow } from "./profile.js";
import { median, type Summary } from "./stats.js";
import { OFFLOAD_SYSTEMS, type OffloadSystemName, type ProcessUsage, type SystemName } from "./systems/system.js";
import { formatTable, type Cell } from "./table.js";
import { formatTargets, type TargetResult } from "./targets.js";
import type { FlowResult, WorkloadResults } from "./workloads/types.js";

/** Everything measured of one system. */
export interface SystemResults {
  name: SystemName;
  /** Which pass of `--repeat` (1-based). */
  repeat: number;
  description?: string;
  /** Start-up (servers, database, workers) to ready, ms. */
  startMs?: number;
  workloads: WorkloadResults;
  /** Its processes after the workloads: peak RSS, CPU time since they started. */
  processes: ProcessUsage[];
  /** CPU seconds used during the workloads, by component (summed over its processes), and by the bench itself as `bench (client)`. */
  cpuSeconds: Record<string, number>;
  /** When its workloads ran, in microseconds of the monotonic clock V8 stamps profiles with: `--profile` counts only this span. */
  workloadsUs?: ProfileWindow;
  /** Set when the system failed to start or a workload threw; later workloads of it did not run. */
  error?: string;
}

export interface Report {
  conditions: Conditions;
  options: Omit<BenchOptions, "out">;
  systems: SystemResults[];
  /** CPU profiles of each Offload system's run API and first worker over its workloads (`--profile`). */
  profiles?: { system: OffloadSystemName; process: string; file: string; summary: ProfileSummary }[];
  /** Issue 15's targets, as measured (see `targets.ts`). */
  targets?: TargetResult[];
}

/**
 * The ratio columns, in order: each Offload system divided by a peer. Offload
 * on PostgreSQL against both; on PGlite against BullMQ only (the issue's
 * measure), which keeps the tables within a terminal's width.
 */
const RATIOS: readonly (readonly [OffloadSystemName, SystemName])[] = [
  ["offload", "bullmq"],
  ["offload", "jetstream"],
  ["offload-pglite", "bullmq"],
];

type Better = "higher" | "lower";
interface MetricRow {
  metric: string;
  better: Better;
  value(r: SystemResults): number | undefined;
}

export function formatReport(r: Report): string {
  const out: string[] = [formatConditions(r)];
  const shown = r.systems;
  const has = (pick: (w: WorkloadResults) => unknown): boolean => shown.some((s) => pick(s.workloads) !== undefined);
  const o = r.options;

  if (has((w) => w.accept)) {
    const a = (s: SystemResults) => s.workloads.accept;
    out.push(
      compare(`1. Accept, one at a time: ${o.calls} runs by ${o.callers} concurrent callers (delay() / add() / publish()), no worker consuming`, shown, [
        { metric: "accepted/s", better: "higher", value: (s) => a(s)?.perSec },
        ...latencyRows("call", (s) => a(s)?.callMs, ["p50", "p95", "p99"]),
      ]),
    );
  }
  if (has((w) => w.batch)) {
    const b = (s: SystemResults) => s.workloads.batch;
    out.push(
      compare(`2. Accept in batches: ${o.batches} x ${o.batchSize} runs (map({deferred: true}) / addBulk() / pipelined publishes), no worker consuming`, shown, [
        { metric: "accepted/s", better: "higher", value: (s) => b(s)?.perSec },
        ...latencyRows("batch", (s) => b(s)?.batchMs, ["p50", "max"]),
      ]),
    );
  }
  if (has((w) => w.flatOut)) {
    out.push(
      compare(
        `3. Flat out: ${o.runs} no-op runs in batches of ${o.batchSize} to ${o.workers} workers x ${o.concurrency}, until all completed`,
        shown,
        flowRows((s) => s.workloads.flatOut, false),
      ),
    );
  }
  o.rates.forEach((rate, i) => {
    const pick = (s: SystemResults): FlowResult | undefined => s.workloads.offered.find((f) => f.offeredPerSec === rate);
    if (!shown.some(pick)) return;
    out.push(
      compare(
        `${4 + i}. Offered load ${rate} runs/s for ${o.seconds} s, one delay() at a time on a fixed schedule, ${o.workers} workers x ${o.concurrency}`,
        shown,
        flowRows(pick, true),
      ),
    );
  });
  out.push(formatCpu(shown, 4 + o.rates.length));
  out.push(formatRss(shown, 5 + o.rates.length));
  out.push(
    [
      "  ratio columns: Offload's value divided by the peer's. On a rate, below 1x is Offload behind; on a latency or memory, above 1x is.",
      "  accepted: the submit call returned. started: the worker began the run. completed: the outcome is recorded where the app reads it",
      "  (Offload: the run's updatedAt in its database, written by the run API from the worker's event; BullMQ: finishedOn, set as the job",
      "  moves to completed; JetStream: the worker acked). Latencies are per run, from accepted; p50/p95/p99 by nearest rank.",
      "  A negative latency is a run a worker started (or finished) before its submit call had returned to the caller: for a batch,",
      "  before the whole batch was accepted. BullMQ stamps whole milliseconds, the others fractions.",
    ].join("\n"),
  );
  for (const name of OFFLOAD_SYSTEMS) {
    const lagP50 = medianOver(shown, name, (s) => s.workloads.flatOut?.recordLagMs?.p50);
    const lagP99 = medianOver(shown, name, (s) => s.workloads.flatOut?.recordLagMs?.p99);
    if (lagP50 !== undefined && lagP99 !== undefined) {
      out.push(`  ${name}, flat out: the run API recorded each outcome ${fmt(lagP50)} ms (p50) / ${fmt(lagP99)} ms (p99) after the worker finished it.`);
    }
  }
  for (const s of shown) if (s.error) out.push(`\n${s.name}${s.repeat > 1 ? ` (pass ${s.repeat})` : ""} FAILED: ${s.error}`);
  for (const p of r.profiles ?? []) out.push(formatProfile(p.summary, `\nWhere ${p.process}'s time went, ${p.system} (node --cpu-prof, its workloads only; ${p.file})`));
  if (r.targets?.length) out.push(formatTargets(r.targets, o));
  return out.join("\n");
}

function formatConditions(r: Report): string {
  const c = r.conditions;
  const o = r.options;
  const commit = c.gitDirty ? `${c.gitCommit.replace(/\+dirty$/, "")}, tree dirty (HEAD plus uncommitted changes to tracked files)` : `${c.gitCommit}, tree clean`;
  return [
    "Conditions",
    `  date         ${c.at}`,
    `  commit       ${commit}`,
    `  machine      ${c.cpuModel}, ${c.cpuCount} cores, ${c.memoryGiB} GiB, Linux ${c.kernel}`,
    `  versions     ${versionsLine(c)}`,
    `  load avg     ${c.loadAvgStart} at start${c.loadAvgEnd === undefined ? "" : `, ${c.loadAvgEnd} at end`} (1 min, ${c.cpuCount} cores)`,
    ...[...new Set(r.systems.map((s) => s.name))].map((name) => {
      const runs = r.systems.filter((s) => s.name === name);
      const ready = median(runs.flatMap((s) => (s.startMs === undefined ? [] : [s.startMs])));
      return `  ${name.padEnd(14)} ${runs.find((s) => s.description)?.description ?? "(did not start)"}${ready === undefined ? "" : `; ready in ${ready} ms`}`;
    }),
    `  settings     workers=${o.workers} concurrency=${o.concurrency} calls=${o.calls} callers=${o.callers} warmup=${o.warmup} batch=${o.batches}x${o.batchSize}`,
    `               runs=${o.runs} rates=${o.rates.join(",")} duration=${o.seconds}s repeat=${o.repeat} log-level=${o.logLevel}${o.profile ? " profile=on (the API runs slower)" : ""}`,
    "  one system at a time, each started fresh; client, servers and workers share this machine's CPUs over loopback",
  ].join("\n");
}

function latencyRows(what: string, pick: (s: SystemResults) => Summary | undefined, stats: readonly (keyof Summary)[]): MetricRow[] {
  return stats.map((k) => ({ metric: `${what} ${k} ms`, better: "lower", value: (s: SystemResults) => pick(s)?.[k] }));
}

function flowRows(pick: (s: SystemResults) => FlowResult | undefined, offered: boolean): MetricRow[] {
  return [
    ...(offered
      ? [{ metric: "accepted/s", better: "higher" as const, value: (s: SystemResults) => pick(s)?.acceptedPerSec }]
      : [{ metric: "completed/s", better: "higher" as const, value: (s: SystemResults) => pick(s)?.completedPerSec }]),
    ...(offered ? latencyRows("delay() call", (s) => pick(s)?.callMs, ["p50", "p99"]) : []),
    ...latencyRows("to started", (s) => pick(s)?.toStartMs, ["p50", "p95", "p99"]),
    ...latencyRows("to completed", (s) => pick(s)?.toCompletedMs, ["p50", "p95", "p99"]),
    ...(offered ? [{ metric: "sender behind by, max ms", better: "lower" as const, value: (s: SystemResults) => pick(s)?.maxSendLagMs }] : []),
  ];
}

function formatRss(shown: readonly SystemResults[], n: number): string {
  // PostgreSQL's processes share its buffers: their RSS does not add up, so it is left out.
  const components = [...new Set(shown.flatMap((s) => s.processes.map((p) => p.component)))].filter((c) => c !== "postgres");
  const rows: MetricRow[] = components.map((component) => ({
    metric: component === "worker" ? "worker (largest)" : component,
    better: "lower",
    value: (s) => peakRssMiB(s, component),
  }));
  return compare(`${n}. Peak RSS, MiB (VmHWM after the workloads; offload-pglite's database is inside offload-api)`, shown, rows);
}

function formatCpu(shown: readonly SystemResults[], n: number): string {
  const components = [...new Set(shown.flatMap((s) => Object.keys(s.cpuSeconds)))].sort((a, b) => order(a) - order(b));
  const total = (s: SystemResults): number | undefined => (Object.keys(s.cpuSeconds).length ? Object.values(s.cpuSeconds).reduce((a, b) => a + b, 0) : undefined);
  const rows: MetricRow[] = [
    ...components.map((component): MetricRow => ({
      metric: component === "worker" ? "workers (all)" : component,
      better: "lower",
      value: (s) => s.cpuSeconds[component],
    })),
    { metric: "total", better: "lower", value: total },
    { metric: "total without the client", better: "lower", value: systemCpuSeconds },
    { metric: "runs submitted", better: "lower", value: runsSubmitted },
    { metric: "CPU ms per run (no client)", better: "lower", value: cpuMsPerRun },
  ];
  return compare(`${n}. CPU seconds used during the workloads, by process (the same work on each system), and per run`, shown, rows);
}

/** Servers first, then workers, then the bench itself. */
function order(component: string): number {
  return component === CLIENT ? 3 : component === "worker" ? 2 : 1;
}

/**
 * One table: a row per metric, a column per system, then Offload ÷ each peer.
 * With `--repeat`, each cell is the median of that metric over the passes.
 */
function compare(title: string, shown: readonly SystemResults[], rows: readonly MetricRow[]): string {
  const names = [...new Set(shown.map((s) => s.name))];
  const pairs = RATIOS.filter(([a, b]) => names.includes(a) && names.includes(b));
  const cell = (row: MetricRow, name: SystemName): number | undefined => medianOver(shown, name, row.value);
  const header = ["", ...names, ...pairs.map(([a, b]) => `${a}/${b}`)];
  const body: Cell[][] = rows.map((row) => [row.metric, ...names.map((n) => cell(row, n)), ...pairs.map(([a, b]) => ratio(cell(row, a), cell(row, b)))]);
  const passes = Math.max(...names.map((n) => shown.filter((s) => s.name === n).length));
  return formatTable(passes > 1 ? `${title}; median of ${passes} passes` : title, header, body);
}

/** `a / b` as `0.21x`; nothing when either is missing or too near zero to divide by meaningfully. */
function ratio(a: number | undefined, b: number | undefined): string | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0.05 || a < 0) return undefined;
  const x = a / b;
  return `${x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2)}x`;
}

const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1));
