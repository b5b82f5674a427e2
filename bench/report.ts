import type { Conditions } from "./conditions.js";
import type { BenchOptions } from "./options.js";
import type { BatchResult } from "./scenarios/batch.js";
import type { E2eResult } from "./scenarios/e2e.js";
import type { DelayLatency } from "./scenarios/latency.js";
import type { ThroughputResult } from "./scenarios/throughput.js";
import { formatTable, type Cell } from "./table.js";
import type { DbKind } from "../test/support/index.js";

/** Everything measured against one database kind. */
export interface DbResults {
  db: DbKind;
  /** Stack (nats-server + database + offload-api to ready) and worker start times, ms. */
  startup: { stackMs?: number; workerMs: number[] };
  latency: DelayLatency[];
  batch?: BatchResult;
  e2e?: E2eResult;
  throughput: ThroughputResult[];
  /** Set when a scenario threw; the later scenarios of this db did not run. */
  error?: string;
}

export interface Report {
  conditions: Conditions;
  options: Omit<BenchOptions, "out">;
  results: DbResults[];
}

export function formatReport(r: Report): string {
  const c = r.conditions;
  const o = r.options;
  const out: string[] = [];
  out.push(
    [
      "Conditions",
      `  cpu          ${c.cpuModel} x ${c.cpuCount}, ${c.memoryGiB} GiB, Linux ${c.kernel}`,
      `  node         ${c.node}`,
      `  nats-server  ${c.natsServer}`,
      `  postgres     ${c.postgres}   (pglite ${c.pglite})`,
      `  commit       ${c.gitCommit}   at ${c.at}`,
      `  load avg     ${c.loadAvgStart} at start, ${c.loadAvgEnd ?? "-"} at end (1 min)`,
      `  settings     db=${o.dbs.join(",")} log-level=${o.logLevel} workers=${o.workers.join(",")} concurrency=${o.concurrency}/worker`,
      `               latency-runs=${o.latencyRuns} callers=${o.callers} warmup=${o.warmup} batch=${o.batches}x${o.batchSize} e2e-runs=${o.e2eRuns} runs=${o.runs} repeat=${o.repeat} poll-ms=${o.pollMs}`,
      "  everything on loopback, on this one machine: client, API, database, nats-server and workers share the CPUs",
    ].join("\n"),
  );
  const rows = <T>(pick: (d: DbResults) => T[], row: (d: DbResults, x: T) => Cell[]): Cell[][] => r.results.flatMap((d) => pick(d).map((x) => row(d, x)));

  const lat = rows((d) => d.latency, (d, x) => [d.db, x.callers, x.calls, x.reqPerSec, x.latencyMs.p50, x.latencyMs.p95, x.latencyMs.p99, x.latencyMs.max, x.errors]);
  if (lat.length) {
    out.push(formatTable("1. delay() latency: POST /v1/runs through the SDK client (task served by no worker; ms)", ["db", "callers", "calls", "req/s", "p50", "p95", "p99", "max", "errors"], lat));
  }
  const batch = rows((d) => (d.batch ? [d.batch] : []), (d, x) => [d.db, x.batchSize, x.batches, x.batchMs.p50, x.batchMs.mean, x.batchMs.max, x.runsPerSec]);
  if (batch.length) {
    out.push(formatTable("2. Batch: map() = POST /v1/runs/batch, one after another (ms per batch)", ["db", "runs/batch", "batches", "p50 ms", "mean ms", "max ms", "runs/s"], batch));
  }
  const e2e = rows((d) => (d.e2e ? [d.e2e] : []), (d, x) => [
    d.db, x.runs, `${x.workers}x${x.concurrency}`, x.totalMs.p50, x.totalMs.p95, x.totalMs.p99, x.totalMs.max, x.delayMs.p50,
  ]);
  if (e2e.length) {
    out.push(formatTable("3a. End-to-end latency of single runs: add.delay() -> result(), sequential (ms)", ["db", "runs", "workers", "p50", "p95", "p99", "max", "delay() p50"], e2e));
  }
  // One row per db and worker count: the median measurement by runs/s, with the range of all.
  const tp = rows(
    (d) => [...new Set(d.throughput.map((x) => x.workers))].map((w) => d.throughput.filter((x) => x.workers === w)),
    (d, all) => {
      const sorted = [...all].sort((a, b) => a.runsPerSec - b.runsPerSec);
      const x = sorted[Math.floor((sorted.length - 1) / 2)]!;
      const range = sorted.length > 1 ? `${sorted[0]!.runsPerSec.toFixed(0)}-${sorted[sorted.length - 1]!.runsPerSec.toFixed(0)}` : "-";
      return [
        d.db, `${x.workers}x${x.concurrency}`, x.runs, `${x.repeat}/${all.length}`, x.submitMs, x.completedMs / 1000, x.runsPerSec, range,
        x.workerDoneMs / 1000, x.workerRunsPerSec, x.queueWaitMs.p50, x.queueWaitMs.p95, x.byWorker.join("/"),
      ];
    },
  );
  if (tp.length) {
    out.push(
      formatTable(
        "3b. Throughput: one map() of `add` runs until all COMPLETED (the median of --repeat measurements by runs/s)",
        ["db", "workers", "runs", "median of", "submit ms", "COMPLETED s", "runs/s", "runs/s range", "worker s", "worker runs/s", "queue p50", "queue p95", "by worker"],
        tp,
      ),
    );
    out.push(
      [
        "  COMPLETED s: from map() until polling listRuns (task add, each open state, limit 1, every --poll-ms) found none open, all COMPLETED; runs/s from it.",
        "  worker s: from map() to the last finishedAt the workers stamped; the gap is the API materializing events.",
        "  queue p50/p95: startedAt - createdAt per run (ms). by worker: runs done by each worker process.",
      ].join("\n"),
    );
  }
  const st = rows((d) => [d.startup], (d, x) => [d.db, x.stackMs, x.workerMs.join("/") || "-"]);
  out.push(formatTable("Start-up (ms)", ["db", "stack ready", "workers ready"], st));
  for (const d of r.results) if (d.error) out.push(`\n!! ${d.db}: ${d.error}`);
  return out.join("\n");
}
