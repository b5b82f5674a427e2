import { parseArgs } from "node:util";
import { join } from "node:path";
import type { DbKind } from "../test/support/index.js";
import { ROOT } from "../test/support/index.js";

export const SCENARIOS = ["latency", "batch", "e2e", "throughput"] as const;
export type Scenario = (typeof SCENARIOS)[number];
const DBS: readonly DbKind[] = ["postgres", "pglite"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface BenchOptions {
  dbs: DbKind[];
  only: Scenario[];
  /** Throughput: runs in the one batch, per worker count. */
  runs: number;
  /** Worker counts to compare in the throughput scenario. */
  workers: number[];
  /** Throughput: measurements per worker count (the table shows the median). */
  repeat: number;
  /** Runs in flight per worker process. */
  concurrency: number;
  /** Latency: `delay()` calls per measurement (sequential, then concurrent). */
  latencyRuns: number;
  /** Latency: concurrent callers of the second measurement. */
  callers: number;
  /** Unmeasured calls before each latency measurement. */
  warmup: number;
  batchSize: number;
  batches: number;
  /** E2E: single runs, one after the other, delay() → result(). */
  e2eRuns: number;
  pollMs: number;
  /** Most seconds one throughput measurement may take before the bench gives up on it. */
  timeoutSeconds: number;
  logLevel: (typeof LOG_LEVELS)[number];
  out: string;
}

export const HELP = `Usage: npm run bench -- [options]      (or: npx tsx bench/run.ts [options] after npm run build)

Benchmarks a real stack (nats-server, PostgreSQL or PGlite, offload-api, offload-worker
processes from test/support) on loopback, prints a table per scenario and writes the
numbers as JSON. Measures and prints; asserts nothing.

Scenarios (--only, comma-separated; default all):
  latency      N delay() calls (POST /v1/runs via the SDK), sequential, then with --callers concurrent callers
  batch        --batches map() calls (POST /v1/runs/batch) of --batch-size runs each
  e2e          --e2e-runs single runs one after another: delay() then result(), 1 worker idle otherwise
  throughput   --runs runs of the fixture task "add" in one map() call, until all COMPLETED, per --workers count

Options:
  --db LIST              postgres,pglite (default both)
  --only LIST            scenarios to run (default latency,batch,e2e,throughput)
  --runs N               throughput: runs per measurement (default 2000)
  --workers LIST         throughput: worker process counts to compare (default 1,2)
  --repeat N             throughput: measurements per worker count; the table shows the median (default 3)
  --concurrency N        runs in flight per worker (default 16)
  --latency-runs N       latency: calls per measurement (default 1000)
  --callers N            latency: concurrent callers of the second measurement (default 16)
  --warmup N             unmeasured calls before each latency measurement (default 50)
  --batch-size N         batch: runs per map() call (default 1000, at most 5000)
  --batches N            batch: map() calls (default 5)
  --e2e-runs N           e2e: single runs (default 200)
  --poll-ms N            throughput: how often to count COMPLETED runs (default 100)
  --timeout SECONDS      throughput: give up on one measurement after this long (default 120)
  --log-level LEVEL      OFFLOAD_LOG_LEVEL of the API and workers (default warn: info logs every request)
  --out FILE             where to write the JSON (default bench/results/latest.json)
  --quick                small sizes for a smoke run (runs 300, repeat 1, latency-runs 200, batches 2, e2e-runs 30)
  -h, --help             this text
`;

export class UsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      db: { type: "string" },
      only: { type: "string" },
      runs: { type: "string" },
      workers: { type: "string" },
      repeat: { type: "string" },
      concurrency: { type: "string" },
      "latency-runs": { type: "string" },
      callers: { type: "string" },
      warmup: { type: "string" },
      "batch-size": { type: "string" },
      batches: { type: "string" },
      "e2e-runs": { type: "string" },
      "poll-ms": { type: "string" },
      timeout: { type: "string" },
      "log-level": { type: "string" },
      out: { type: "string" },
      quick: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const quick = values.quick ?? false;
  const int = (name: string, raw: string | undefined, dflt: number, min = 1, max = 1_000_000): number => {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const list = <T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] => {
    if (raw === undefined) return [...allowed];
    const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
    const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
    if (bad.length || items.length === 0) throw new UsageError(`--${name}: expected some of ${allowed.join(",")}, got "${raw}"`);
    return [...new Set(items)] as T[];
  };
  const workers = (values.workers ?? "1,2").split(",").map((s) => int("workers", s.trim(), 1, 1, 8));
  const logLevel = values["log-level"] ?? "warn";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}`);
  return {
    dbs: list("db", values.db, DBS),
    only: list("only", values.only, SCENARIOS),
    runs: int("runs", values.runs, quick ? 300 : 2000),
    workers: [...new Set(workers)].sort((a, b) => a - b),
    repeat: int("repeat", values.repeat, quick ? 1 : 3, 1, 20),
    concurrency: int("concurrency", values.concurrency, 16, 1, 1000),
    latencyRuns: int("latency-runs", values["latency-runs"], quick ? 200 : 1000),
    callers: int("callers", values.callers, 16, 1, 256),
    warmup: int("warmup", values.warmup, quick ? 10 : 50, 0),
    batchSize: int("batch-size", values["batch-size"], 1000, 1, 5000),
    batches: int("batches", values.batches, quick ? 2 : 5),
    e2eRuns: int("e2e-runs", values["e2e-runs"], quick ? 30 : 200),
    pollMs: int("poll-ms", values["poll-ms"], 100, 50, 10_000),
    timeoutSeconds: int("timeout", values.timeout, 120, 5, 3600),
    logLevel: logLevel as BenchOptions["logLevel"],
    out: values.out ?? join(ROOT, "bench/results/latest.json"),
  };
}
