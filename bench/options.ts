import { parseArgs } from "node:util";
import { join } from "node:path";
import { ROOT } from "../test/support/index.js";
import { SYSTEMS, type SystemName } from "./systems/system.js";

export const WORKLOADS = ["accept", "batch", "flat-out", "offered"] as const;
export type Workload = (typeof WORKLOADS)[number];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface BenchOptions {
  systems: SystemName[];
  only: Workload[];
  /** Worker processes per system. */
  workers: number;
  /** Runs at a time per worker process. */
  concurrency: number;
  /** accept: runs submitted one at a time, in all. */
  calls: number;
  /** accept: concurrent callers. */
  callers: number;
  /** accept: unmeasured calls first. */
  warmup: number;
  /** batch and flat-out: runs per batch call. */
  batchSize: number;
  /** batch: batch calls. */
  batches: number;
  /** flat-out: runs. */
  runs: number;
  /** offered: runs per second, ascending (the low and the high rate). */
  rates: number[];
  /** offered: seconds per rate. */
  seconds: number;
  /** Most seconds a workload may wait for its runs to complete. */
  timeoutSeconds: number;
  /** Times the whole sequence of systems runs; the tables show each metric's median. */
  repeat: number;
  /** Profile the run API and the first worker of each Offload system (`--cpu-prof`) and print where their time goes. */
  profile: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  out: string;
}

export const HELP = `Usage: npm run bench -- [options]      (or: npx tsx bench/run.ts [options] after npm run build)

Runs the same no-op workloads on four systems, one after another, each started
fresh on this machine and stopped after:
  offload         offload-api on PostgreSQL (a throwaway Debian cluster) + nats-server
                  (JetStream in a temporary folder) + --workers offload-worker processes, via the SDK
  offload-pglite  the same, with the API on its embedded PGlite database (npm run dev's default)
  bullmq          BullMQ on redis-server (Debian's, AOF everysec) + --workers worker processes: the peer
  jetstream       raw JetStream publish -> pull -> ack, no API, no database + --workers processes: the floor
and prints one table per workload with them side by side and the ratios, the CPU
per run, peak memory, and issue 15's targets with the measured values; then
writes the same numbers as JSON. Measures and prints; asserts nothing.
Progress goes to stderr, the tables to stdout.

Workloads (--only, comma-separated; default all), in this order:
  accept     --calls runs submitted one at a time (delay() / add() / publish()) by
             --callers concurrent callers, to a queue no worker consumes: accepted/s, call latency
  batch      --batches batches of --batch-size runs (map({deferred: true}) / addBulk() /
             pipelined publishes), to a queue no worker consumes: accepted/s, batch latency
  flat-out   --runs runs to the workers in batches of --batch-size, as fast as taken:
             completed/s, and per run the time from accepted to started and to completed
  offered    for each of --rates, one run at a time on a fixed schedule (open loop) for
             --duration seconds: the same latencies under a load the system can carry

Options:
  --systems LIST         offload,offload-pglite,bullmq,jetstream (default all four)
  --only LIST            workloads to run on each system (default accept,batch,flat-out,offered)
  --workers N            worker processes per system (default 2: one per core)
  --concurrency N        runs at a time per worker process (default 16)
  --calls N              accept: runs submitted one at a time (default 2000)
  --callers N            accept: concurrent callers (default 16)
  --warmup N             accept: unmeasured calls first (default 100)
  --batch-size N         batch and flat-out: runs per batch call (default 1000, at most 5000)
  --batches N            batch: batch calls (default 5)
  --runs N               flat-out: runs (default 5000)
  --rates LIST           offered: runs per second (default 100,500: a low and a high rate)
  --duration SECONDS     offered: seconds per rate (default 10)
  --timeout SECONDS      most a workload may wait for its runs to complete (default 120)
  --repeat N             run the whole sequence N times, the systems taking turns, and show each
                         metric's median (default 1; 3 takes three times as long)
  --profile              profile the run API and the first worker of each Offload system with
                         node --cpu-prof (slows them a little) and print where their time goes;
                         the .cpuprofile files are kept under bench/results/
  --log-level LEVEL      OFFLOAD_LOG_LEVEL of the API and workers (default warn: info logs every request)
  --out FILE             where to write the JSON (default bench/results/bench-<time>.json)
  --quick                small sizes for a smoke run (calls 300, batches 2x500, runs 1000,
                         rates 50,200 for 3 s)
  -h, --help             this text

Exit code: 0; 1 if a system failed (its error is printed and kept in the JSON, the
others still run); 2 for a bad flag. Ctrl-C stops every server and worker first.
`;

export class UsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      systems: { type: "string" },
      only: { type: "string" },
      // Gone: offload-pglite is a system of its own now. Parsed only to say so.
      db: { type: "string" },
      workers: { type: "string" },
      concurrency: { type: "string" },
      calls: { type: "string" },
      callers: { type: "string" },
      warmup: { type: "string" },
      "batch-size": { type: "string" },
      batches: { type: "string" },
      runs: { type: "string" },
      rates: { type: "string" },
      duration: { type: "string" },
      timeout: { type: "string" },
      repeat: { type: "string" },
      profile: { type: "boolean" },
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
    // Always in the canonical order: systems and workloads run in the order the tables show them.
    return allowed.filter((a) => items.includes(a));
  };
  if (values.db !== undefined) throw new UsageError("--db: gone; Offload on PGlite is the system offload-pglite (--systems offload-pglite), on PostgreSQL the system offload");
  const logLevel = values["log-level"] ?? "warn";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}`);
  const rates = (values.rates ?? (quick ? "50,200" : "100,500")).split(",").map((s) => int("rates", s.trim(), 0, 1, 100_000));
  return {
    systems: list("systems", values.systems, SYSTEMS),
    only: list("only", values.only, WORKLOADS),
    workers: int("workers", values.workers, 2, 1, 16),
    concurrency: int("concurrency", values.concurrency, 16, 1, 1000),
    calls: int("calls", values.calls, quick ? 300 : 2000),
    callers: int("callers", values.callers, 16, 1, 256),
    warmup: int("warmup", values.warmup, quick ? 20 : 100, 0),
    batchSize: int("batch-size", values["batch-size"], quick ? 500 : 1000, 1, 5000),
    batches: int("batches", values.batches, quick ? 2 : 5),
    runs: int("runs", values.runs, quick ? 1000 : 5000),
    rates: [...new Set(rates)].sort((a, b) => a - b),
    seconds: int("duration", values.duration, quick ? 3 : 10, 1, 600),
    timeoutSeconds: int("timeout", values.timeout, 120, 5, 3600),
    repeat: int("repeat", values.repeat, 1, 1, 10),
    profile: values.profile ?? false,
    logLevel: logLevel as BenchOptions["logLevel"],
    out: values.out ?? join(ROOT, `bench/results/bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
  };
}

/**
 * The options of a bench script's command line: `parse` answers them, or
 * undefined for `--help` (printed here, then undefined). A bad option prints
 * its message and `help`, and exits 2, as every bench script does.
 */
export function optionsOrExit<T>(parse: (argv: string[]) => T | undefined, help: string): T | undefined {
  let opts: T | undefined;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${help}`);
    process.exit(2);
  }
  if (opts === undefined) process.stdout.write(help);
  return opts;
}
