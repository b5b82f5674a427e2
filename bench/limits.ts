// `npm run bench:limits`: throughput of a task with a concurrency limit of 5 per key over 100 keys (held in the
// run API, dispatched by admission) next to the same task without limits (straight into JetStream), on one
// fresh stack: nats-server, PostgreSQL, the built offload-api and real offload-worker processes. Measures and
// prints; asserts nothing.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, killAll, startStack, stopSharedPostgres } from "../test/support/index.js";
import { collectConditions, loadAvg1 } from "./conditions.js";
import { optionsOrExit } from "./options.js";
import { round } from "./stats.js";
import { formatTable } from "./table.js";
import { measureLimits, warmUp, type LimitsLane } from "./workloads/limits.js";

const HELP = `Usage: npm run bench:limits -- [--runs N] [--keys K] [--ms MS] [--workers W] [--concurrency C] [--out FILE]

Submits N runs (batches of 1000) of a task without limits, then N of the same
task with concurrency { limit: 5, key } over K keys, and waits until all
completed; prints runs/s, the most runs of one key at once, and created →
started. Workers' capacity (W × C) below K × 5 makes the workers, not the
limit, the bottleneck: the difference is admission's cost.

  --runs N          runs per lane (default 5000)
  --keys K          keys (default 100)
  --ms MS           each run's body sleeps this long (default 0)
  --workers W       worker processes (default 2)
  --concurrency C   runs per worker at once (default 16)
  --out FILE        where the JSON goes (default bench/results/limits-<time>.json)
  -h, --help        this help
`;

const LIMIT = 5;
/** The two lanes: the task without limits, and the same body with 5 per key. */
const LANES = [["lim-free", null], ["lim-keyed", LIMIT]] as const;

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: "string" }, keys: { type: "string" }, ms: { type: "string" }, workers: { type: "string" },
      concurrency: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const int = (name: string, v: string | undefined, dflt: number, min: number): number => {
    const n = Number(v ?? dflt);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got ${v}`);
    return n;
  };
  return {
    runs: int("runs", values.runs, 5000, 1),
    keys: int("keys", values.keys, 100, 1),
    ms: int("ms", values.ms, 0, 0),
    workers: int("workers", values.workers, 2, 1),
    concurrency: int("concurrency", values.concurrency, 16, 1),
    out: values.out ?? join(ROOT, "bench/results", `limits-${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
  };
}

async function main(): Promise<void> {
  const opts = optionsOrExit(parse, HELP);
  if (!opts) return;
  const conditions = collectConditions();
  process.stderr.write("starting nats-server, PostgreSQL, the run API and the workers…\n");
  const stack = await startStack({ db: "postgres", apiEnv: { OFFLOAD_LOG_LEVEL: "warn" } });
  const stop = async (): Promise<void> => {
    await stack.stop().catch(() => undefined);
    await stopSharedPostgres().catch(() => undefined);
    await killAll();
  };
  process.once("SIGINT", () => void stop().finally(() => process.exit(130)));
  const lanes: LimitsLane[] = [];
  try {
    const module = join(ROOT, "bench/peers/offload-limits.mjs");
    for (let i = 0; i < opts.workers; i++) await stack.startWorker({ module, concurrency: opts.concurrency, env: { OFFLOAD_LOG_LEVEL: "warn" } });
    // The limits reach the run API with the workers' registration: wait until it knows them.
    for (let tries = 0; ; tries++) {
      const tasks = (await (await fetch(`${stack.apiUrl}/v1/tasks`)).json()) as { tasks: { name: string; definition?: { concurrency?: unknown } }[] };
      if (tasks.tasks.some((t) => t.name === "lim-keyed" && t.definition?.concurrency)) break;
      if (tries > 100) throw new Error("the run API never heard the workers' registration of lim-keyed");
      await new Promise((r) => setTimeout(r, 100));
    }
    const common = { runs: opts.runs, keys: opts.keys, ms: opts.ms, timeoutMs: 600_000 };
    // Unmeasured warm-up of both paths (JIT, connections, the consumers), so neither lane pays for it.
    process.stderr.write("warm-up…\n");
    for (const [task, limitPerKey] of LANES) await warmUp(stack, { ...common, runs: 500, task, limitPerKey });
    for (const [task, limitPerKey] of LANES) {
      process.stderr.write(`${task}: ${opts.runs} runs…\n`);
      lanes.push(await measureLimits(stack, { ...common, task, limitPerKey }));
    }
  } finally {
    await stop();
  }
  const cond = { ...conditions, loadAvgEnd: loadAvg1() };
  process.stdout.write(
    formatTable(
      `Limits: ${opts.runs} runs per lane over ${opts.keys} keys, body ${opts.ms} ms, ${opts.workers} workers × ${opts.concurrency}`,
      ["lane", "limit/key", "runs/s", "max of a key at once", "created→started p50 ms", "p90 ms", "submit ms"],
      [
        ...lanes.map((l) => [l.limitPerKey === null ? "Offload, no limits" : "Offload, 100 keys", l.limitPerKey ?? "none", round(l.completedPerSec, 0), l.maxPerKey, round(l.startP50, 0), round(l.startP90, 0), round(l.submitMs, 0)]),
        ["BullMQ", "group limits are Pro-only", null, null, null, null, null],
      ],
    ) +
      `\n\nConditions: ${cond.cpuModel} × ${cond.cpuCount}, ${cond.memoryGiB} GiB, Linux ${cond.kernel}, Node ${cond.node}, ${cond.natsServer}, ${cond.postgres}, ` +
      `commit ${cond.gitCommit}, load ${cond.loadAvgStart} → ${cond.loadAvgEnd}\n`,
  );
  await mkdir(join(opts.out, ".."), { recursive: true });
  await writeFile(opts.out, `${JSON.stringify({ conditions: cond, options: opts, lanes }, null, 2)}\n`);
  process.stderr.write(`wrote ${opts.out}\n`);
}

await main();
