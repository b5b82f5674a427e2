// `npm run bench:autoscale`: how fast a TaskWorker at zero replicas gets a
// pod and runs a delayed run. Real nats-server, PostgreSQL, run API and
// controller; the Kubernetes stand-in's Deployment and ReplicaSet controllers
// make the pod, and its kubelet starts a real offload-worker process for it.
// Measures and prints; asserts nothing.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isPodReady, type Obj, type StoreEvent } from "../test/k8s/index.js";
import { ROOT } from "../test/support/index.js";
import { autoscaledTaskWorker, metaOf, NS, podName, startAutoscaleWorld, untilKube, type AutoscaleWorld } from "../test/autoscale/support.js";
import { collectConditions, loadAvg1 } from "./conditions.js";
import { optionsOrExit } from "./options.js";
import { percentile, round } from "./stats.js";
import { formatTable } from "./table.js";

const HELP = `Usage: npm run bench:autoscale -- [--trials N] [--out FILE]

From zero replicas, N times: delay() one run of a TaskWorker at 0 and time
each step until the run has started on the pod made for it, then wait for the
pool to go back to 0. Prints the median and p90 of each step.

  --trials N    trials (default 10)
  --out FILE    where the JSON goes (default bench/results/autoscale-<time>.json)
  -h, --help    this help
`;

/** The steps of one trial, in milliseconds after delay() was called. */
const STEPS = [
  ["accepted", "delay() returned (run recorded and dispatched)"],
  ["taskWorkerScaled", "TaskWorker spec.replicas 0 → 1 (the controller's decision, through the scale subresource)"],
  ["deploymentScaled", "Deployment spec.replicas 0 → 1 (the controller's apply)"],
  ["podCreated", "pod created (the stand-in's ReplicaSet controller)"],
  ["podReady", "pod Ready (a real worker process started and answered /readyz)"],
  ["runStarted", "run started (the run's startedAt, stamped by the worker)"],
  ["runCompleted", "run completed (the run's finishedAt)"],
] as const;
type Step = (typeof STEPS)[number][0];

const TW = "bench-zero";
const CONTROLLER_ENV: Record<string, string> = {};
const AUTOSCALING = { minReplicas: 0, maxReplicas: 1, targetBacklogPerReplica: 1, scaleDownDelaySeconds: 0 };

function parse(argv: string[]): { trials: number; out: string } | undefined {
  const { values } = parseArgs({ args: argv, options: { trials: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true });
  if (values.help) return undefined;
  const trials = Number(values.trials ?? 10);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials must be a whole number ≥ 1, got ${values.trials}`);
  const out = values.out ?? join(ROOT, "bench/results", `autoscale-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  return { trials, out };
}

/** One trial: from a pool at zero, delay() a run and note when each step happened. */
async function trial(world: AutoscaleWorld, n: number): Promise<Record<Step, number>> {
  const { fake, stack } = world;
  await untilKube(fake, "the pool at zero, no pod left", () => {
    const tw = fake.get("taskworkers", NS, TW);
    const dep = fake.get("deployments", NS, TW);
    return (tw?.spec as Obj | undefined)?.replicas === 0 && (dep?.spec as Obj | undefined)?.replicas === 0 && fake.list("pods", NS).every((p) => !podName(p).startsWith(`${TW}-`));
  }, 120_000);
  const at: Partial<Record<Step, number>> = {};
  const seen = (e: StoreEvent): void => {
    const now = Date.now();
    const name = String(metaOf(e.object).name);
    const plural = e.resource.plural;
    const replicas = (e.object.spec as Obj | undefined)?.replicas;
    if (plural === "taskworkers" && name === TW && replicas === 1) at.taskWorkerScaled ??= now;
    if (plural === "deployments" && name === TW && replicas === 1) at.deploymentScaled ??= now;
    if (plural === "pods" && name.startsWith(`${TW}-`)) {
      if (e.type === "ADDED") at.podCreated ??= now;
      if (isPodReady(e.object)) at.podReady ??= now;
    }
  };
  const unobserve = fake.observe(seen);
  try {
    const t0 = Date.now();
    const run = await stack.client.createRun({ task: "as-quick", parameters: { n } });
    at.accepted = Date.now();
    await stack.client.getResult(run.id, 60);
    // A run may start (and end) before the kubelet marks the pod Ready: wait for that too, or for the pod to go.
    await untilKube(fake, "the pod Ready, or gone", () => at.podReady !== undefined || fake.list("pods", NS).every((p) => !podName(p).startsWith(`${TW}-`) || metaOf(p).deletionTimestamp !== undefined), 60_000);
    const record = await stack.client.getRun(run.id);
    at.runStarted = Date.parse(record.startedAt ?? "");
    at.runCompleted = Date.parse(record.finishedAt ?? "");
    const out = {} as Record<Step, number>;
    for (const [step] of STEPS) out[step] = at[step] === undefined || Number.isNaN(at[step]) ? Number.NaN : at[step]! - t0;
    return out;
  } finally {
    unobserve();
  }
}

async function main(): Promise<void> {
  const opts = optionsOrExit(parse, HELP);
  if (!opts) return;
  const conditions = collectConditions();
  process.stderr.write("starting nats-server, PostgreSQL, the run API, the stand-in and the controller…\n");
  const world = await startAutoscaleWorld(CONTROLLER_ENV);
  const stopOnSignal = (): void => void world.stop().finally(() => process.exit(130));
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  const trials: Record<Step, number>[] = [];
  try {
    world.fake.create(autoscaledTaskWorker(TW, { tasks: ["as-quick"], concurrency: 1, autoscaling: AUTOSCALING }));
    for (let i = 1; i <= opts.trials; i++) {
      const t = await trial(world, i);
      trials.push(t);
      process.stderr.write(`trial ${i}/${opts.trials}: pod created after ${round(t.podCreated)} ms, run started after ${round(t.runStarted)} ms\n`);
    }
  } finally {
    await world.stop();
  }
  const rows = STEPS.map(([step, what]) => {
    const xs = trials.map((t) => t[step]).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    return { step, what, n: xs.length, p50: round(percentile(xs, 50)), p90: round(percentile(xs, 90)), min: round(xs[0] ?? Number.NaN), max: round(xs.at(-1) ?? Number.NaN) };
  });
  const settings = { controllerEnv: CONTROLLER_ENV, autoscaling: AUTOSCALING, concurrency: 1, taskWatchWaitSeconds: 30, taskWatchMinIntervalMs: 1000, apiTaskListMinIntervalMs: 250 };
  process.stdout.write(
    formatTable(
      `From zero: ${opts.trials} trials, milliseconds after delay() was called`,
      ["step", "n", "p50", "p90", "min", "max"],
      rows.map((r) => [r.step, r.n, r.p50, r.p90, r.min, r.max]),
    ) + `\n\n${rows.map((r) => `${r.step}: ${r.what}`).join("\n")}\n`,
  );
  const cond = { ...conditions, loadAvgEnd: loadAvg1() };
  process.stdout.write(
    `\nConditions: ${cond.cpuModel} × ${cond.cpuCount}, ${cond.memoryGiB} GiB, Linux ${cond.kernel}, Node ${cond.node}, ${cond.natsServer}, ${cond.postgres}, ` +
      `commit ${cond.gitCommit}, load ${cond.loadAvgStart} → ${cond.loadAvgEnd}\n` +
      `Controller: ${JSON.stringify(settings)}\n`,
  );
  await mkdir(join(opts.out, ".."), { recursive: true });
  await writeFile(opts.out, `${JSON.stringify({ conditions: cond, settings, steps: rows, trials }, null, 2)}\n`);
  process.stderr.write(`wrote ${opts.out}\n`);
}

await main();
