/**
 * `npm run bench`: throughput and latency of a real Offload stack on this machine.
 * Measures and prints; asserts nothing. See bench/README.md and `--help`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { killAll, startStack, stopSharedPostgres, type DbKind, type Stack } from "../test/support/index.js";
import { collectConditions, loadAvg1 } from "./conditions.js";
import { HELP, UsageError, parseOptions, type BenchOptions } from "./options.js";
import { formatReport, type DbResults, type Report } from "./report.js";
import { measureBatch } from "./scenarios/batch.js";
import { measureE2e } from "./scenarios/e2e.js";
import { measureDelay } from "./scenarios/latency.js";
import { measureThroughput } from "./scenarios/throughput.js";
import { round } from "./stats.js";
import { FIXTURE_MODULE, benchTasks } from "./tasks.js";

let current: Stack | undefined;
let interrupted = false;
let cleaning: Promise<void> | undefined;

/** Stops whatever is running: the current stack, the shared PostgreSQL, any child left. Safe to call twice. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const stack = current;
    current = undefined;
    await stack?.stop().catch((err: unknown) => log(`stopping the stack: ${String(err)}`));
    await stopSharedPostgres().catch((err: unknown) => log(`stopping PostgreSQL: ${String(err)}`));
    await killAll();
  })();
  return cleaning;
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

async function benchDb(db: DbKind, o: BenchOptions): Promise<DbResults> {
  const res: DbResults = { db, startup: { workerMs: [] }, latency: [], throughput: [] };
  const wants = (s: BenchOptions["only"][number]): boolean => o.only.includes(s);
  let t = performance.now();
  const stack = await startStack({ db, apiEnv: { OFFLOAD_LOG_LEVEL: o.logLevel } });
  current = stack;
  res.startup.stackMs = round(performance.now() - t, 0);
  log(`${db}: stack ready in ${res.startup.stackMs} ms (${stack.apiUrl})`);
  try {
    const tasks = benchTasks(stack.client);
    const addWorker = async (): Promise<void> => {
      t = performance.now();
      await stack.startWorker({ module: FIXTURE_MODULE, tasks: ["add"], concurrency: o.concurrency, env: { OFFLOAD_LOG_LEVEL: o.logLevel } });
      res.startup.workerMs.push(round(performance.now() - t, 0));
    };
    // API-only scenarios first, with no worker running.
    if (wants("latency")) {
      for (const callers of [...new Set([1, o.callers])]) {
        log(`${db}: latency, ${o.latencyRuns} delay() calls by ${callers} caller(s)`);
        res.latency.push(await measureDelay(tasks, o.latencyRuns, callers, o.warmup));
      }
    }
    if (wants("batch")) {
      log(`${db}: batch, ${o.batches} map() calls of ${o.batchSize}`);
      res.batch = await measureBatch(tasks, o.batchSize, o.batches);
    }
    if (wants("e2e")) {
      await addWorker();
      log(`${db}: e2e, ${o.e2eRuns} single runs with 1 worker`);
      res.e2e = await measureE2e(tasks, o.e2eRuns, o.warmup, 1, o.concurrency);
    }
    if (wants("throughput")) {
      for (const workers of o.workers) {
        while (stack.workers.length < workers) await addWorker();
        if (stack.workers.length > workers) {
          log(`${db}: skipping throughput with ${workers} worker(s): ${stack.workers.length} already run (list --workers ascending)`);
          continue;
        }
        for (let repeat = 1; repeat <= o.repeat; repeat++) {
          log(`${db}: throughput, ${o.runs} runs with ${workers} worker(s) x ${o.concurrency} (${repeat}/${o.repeat})`);
          const m = { runs: o.runs, workers, repeat, concurrency: o.concurrency, pollMs: o.pollMs, timeoutSeconds: o.timeoutSeconds };
          res.throughput.push(await measureThroughput(stack.client, tasks, m));
        }
      }
    }
  } catch (err) {
    if (interrupted) throw err;
    res.error = err instanceof Error ? err.message : String(err);
    log(`${db}: ${res.error}`);
    const tail = stack.api?.output().slice(-2000);
    if (tail) log(`${db}: last output of offload-api:\n${tail}`);
  } finally {
    current = undefined;
    await stack.stop();
  }
  return res;
}

async function main(): Promise<number> {
  let o: BenchOptions;
  try {
    const parsed = parseOptions(process.argv.slice(2));
    if (parsed === "help") {
      process.stdout.write(HELP);
      return 0;
    }
    o = parsed;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    log(`${signal}: stopping every server and worker`);
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const conditions = collectConditions();
  const started = performance.now();
  const results: DbResults[] = [];
  try {
    for (const db of o.dbs) results.push(await benchDb(db, o));
  } finally {
    await cleanup();
  }
  conditions.loadAvgEnd = loadAvg1();
  const { out, ...options } = o;
  const report: Report = { conditions, options, results };
  process.stdout.write(`${formatReport(report)}\n`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ ...report, durationSeconds: round((performance.now() - started) / 1000, 1) }, null, 2)}\n`);
  log(`wrote ${out} (${round((performance.now() - started) / 1000, 1)} s in all)`);
  return results.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    if (interrupted) return; // the signal handler is stopping everything and exits
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
