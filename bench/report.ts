import type { Conditions } from "./conditions.js";
import type { BenchOptions } from "./options.js";
import { formatProfile, type ProfileSummary } from "./profile.js";
import { median, type Summary } from "./stats.js";
import type { ProcessUsage, SystemName } from "./systems/system.js";
import { formatTable, type Cell } from "./table.js";
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
  /** Set when the system failed to start or a workload threw; later workloads of it did not run. */
  error?: string;
}

export interface Report {
  conditions: Conditions;
  options: Omit<BenchOptions, "out">;
  systems: SystemResults[];
  /** CPU profiles of Offload's run API and first worker over its workloads (`--profile`). */
  profiles?: { process: string; file: string; summary: ProfileSummary }[];
}

/** The peers Offload is divided by in the ratio columns, in column order. */
const PEERS: readonly SystemName[] = ["bullmq", "jetstream"];

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
      "  (Offload: the run's updatedAt in PostgreSQL, written by the run API from the worker's event; BullMQ: finishedOn, set as the job",
      "  moves to completed; JetStream: the worker acked). Latencies are per run, from accepted; p50/p95/p99 by nearest rank.",
      "  A negative latency is a run a worker started (or finished) before its submit call had returned to the caller: for a batch,",
      "  before the whole batch was accepted. BullMQ stamps whole milliseconds, the others fractions.",
    ].join("\n"),
  );
  const lags = shown.flatMap((s) => (s.workloads.flatOut?.recordLagMs ? [s.workloads.flatOut.recordLagMs] : []));
  const lagP50 = median(lags.map((l) => l.p50));
  const lagP99 = median(lags.map((l) => l.p99));
  if (lagP50 !== undefined && lagP99 !== undefined) {
    out.push(`  Offload, flat out: the run API recorded each outcome ${fmt(lagP50)} ms (p50) / ${fmt(lagP99)} ms (p99) after the worker finished it.`);
  }
  for (const s of shown) if (s.error) out.push(`\n${s.name}${s.repeat > 1 ? ` (pass ${s.repeat})` : ""} FAILED: ${s.error}`);
  for (const p of r.profiles ?? []) out.push(formatProfile(p.summary, `\nWhere ${p.process}'s time went (node --cpu-prof over Offload's workloads; ${p.file})`));
  return out.join("\n");
}

function formatConditions(r: Report): string {
  const c = r.conditions;
  const o = r.options;
  return [
    "Conditions",
    `  machine      ${c.cpuModel} x ${c.cpuCount}, ${c.memoryGiB} GiB, Linux ${c.kernel}; node ${c.node}`,
    `  commit       ${c.gitCommit}   at ${c.at}`,
    `  load avg     ${c.loadAvgStart} at start${c.loadAvgEnd === undefined ? "" : `, ${c.loadAvgEnd} at end`} (1 min)`,
    ...[...new Set(r.systems.map((s) => s.name))].map((name) => {
      const runs = r.systems.filter((s) => s.name === name);
      const ready = median(runs.flatMap((s) => (s.startMs === undefined ? [] : [s.startMs])));
      return `  ${name.padEnd(12)} ${runs.find((s) => s.description)?.description ?? "(did not start)"}${ready === undefined ? "" : `; ready in ${ready} ms`}`;
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
    value: (s) => {
      const sizes = s.processes.filter((x) => x.component === component).map((p) => p.peakRssBytes / 2 ** 20);
      return sizes.length ? Math.max(...sizes) : undefined;
    },
  }));
  return compare(`${n}. Peak RSS, MiB (VmHWM after the workloads)`, shown, rows);
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
  ];
  return compare(`${n}. CPU seconds used during the workloads, by process (the same work on each system)`, shown, rows);
}

/** Servers first, then workers, then the bench itself. */
function order(component: string): number {
  return component === "bench (client)" ? 3 : component === "worker" ? 2 : 1;
}

/**
 * One table: a row per metric, a column per system, then Offload ÷ each peer.
 * With `--repeat`, each cell is the median of that metric over the passes.
 */
function compare(title: string, shown: readonly SystemResults[], rows: readonly MetricRow[]): string {
  const names = [...new Set(shown.map((s) => s.name))];
  const peers = PEERS.filter((p) => names.includes("offload") && names.includes(p));
  const cell = (row: MetricRow, name: SystemName): number | undefined =>
    median(shown.filter((s) => s.name === name).map(row.value).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const header = ["", ...names, ...peers.map((p) => `offload/${p}`)];
  const body: Cell[][] = rows.map((row) => [row.metric, ...names.map((n) => cell(row, n)), ...peers.map((p) => ratio(cell(row, "offload"), cell(row, p)))]);
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
