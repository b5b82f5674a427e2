/**
 * `npm run bench`: Offload (on PostgreSQL and on PGlite), BullMQ (the peer)
 * and a raw JetStream loop (the floor), each started fresh on this machine,
 * through the same workloads. Measures and prints; asserts nothing. See
 * bench/README.md and `--help`.
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { killAll, ROOT, stopSharedPostgres } from "../test/support/index.js";
import { nowMs } from "./clock.js";
import { collectConditions, loadAvg1, type Conditions } from "./conditions.js";
import { HELP, UsageError, parseOptions, type BenchOptions } from "./options.js";
import { monotonicUs, newestProfile, summarizeCpuProfile } from "./profile.js";
import { formatReport, type Report, type SystemResults } from "./report.js";
import { round } from "./stats.js";
import { measureTargets } from "./targets.js";
import { startBullmq } from "./systems/bullmq.js";
import { startJetstream } from "./systems/jetstream.js";
import { startOffload } from "./systems/offload.js";
import { isOffload, OFFLOAD_SYSTEMS, type ProcessUsage, type SystemName, type SystemStartOptions, type SystemUnderTest } from "./systems/system.js";
import { measureAccept, measureBatch } from "./workloads/accept.js";
import { measureFlatOut, measureOffered } from "./workloads/flow.js";
import { progressLine } from "./workloads/progress.js";

let current: SystemUnderTest | undefined;
let interrupted = false;
let cleaning: Promise<void> | undefined;

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** Stops whatever is running: the current system, the shared PostgreSQL, any child left. Safe to call twice. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const sys = current;
    current = undefined;
    await sys?.stop().catch((err: unknown) => log(`stopping ${sys.name}: ${String(err)}`));
    await stopSharedPostgres().catch((err: unknown) => log(`stopping PostgreSQL: ${String(err)}`));
    await killAll();
  })();
  return cleaning;
}

function start(name: SystemName, o: BenchOptions, c: Conditions, profileDir: string | undefined): Promise<SystemUnderTest> {
  const base: SystemStartOptions = { workers: o.workers, concurrency: o.concurrency, logLevel: o.logLevel, log: (m) => log(`${name}: ${m}`) };
  const nats = `nats-server ${c.natsServer.replace(/^nats-server:\s*/, "")}`;
  // Each Offload system profiles into a folder of its own, so one's profile is never taken for the other's.
  const profile = profileDir ? { profileDir: join(profileDir, name) } : {};
  switch (name) {
    case "offload":
      return startOffload({ ...base, db: "postgres", versions: `PostgreSQL ${/\(PostgreSQL\) (\S+)/.exec(c.postgres)?.[1] ?? "?"} + ${nats}`, ...profile });
    case "offload-pglite":
      return startOffload({ ...base, db: "pglite", versions: `its embedded PGlite ${c.pglite} (in the API process) + ${nats}`, ...profile });
    case "bullmq":
      return startBullmq(base);
    case "jetstream":
      return startJetstream(base);
  }
}

/** Starts one system, runs the chosen workloads on it in order, reads its memory, stops it. */
async function benchSystem(name: SystemName, repeat: number, o: BenchOptions, c: Conditions, profileDir: string | undefined): Promise<SystemResults> {
  const res: SystemResults = { name, repeat, workloads: { offered: [] }, processes: [], cpuSeconds: {} };
  const wants = (w: BenchOptions["only"][number]): boolean => o.only.includes(w);
  const label = o.repeat > 1 ? `${name} (${repeat}/${o.repeat})` : name;
  const progress = progressLine(`[bench] ${label}`, (line) => process.stderr.write(`${line}\n`));
  const timeoutMs = o.timeoutSeconds * 1000;
  log(`${label}: starting`);
  let t = nowMs();
  try {
    current = await start(name, o, c, profileDir);
  } catch (err) {
    res.error = `could not start: ${err instanceof Error ? err.message : String(err)}`;
    log(`${label}: ${res.error}`);
    return res;
  }
  const sys = current;
  res.description = sys.description;
  res.startMs = round(nowMs() - t, 0);
  log(`${label}: ready in ${res.startMs} ms: ${sys.description}`);
  const before = await sys.processes();
  const clientBefore = process.cpuUsage();
  const fromUs = monotonicUs();
  try {
    if (wants("accept")) {
      progress.phase(`accept, ${o.callers} callers: accepted`, o.calls);
      res.workloads.accept = await measureAccept(sys, { calls: o.calls, callers: o.callers, warmup: o.warmup }, progress);
    }
    if (wants("batch")) {
      progress.phase(`batch: accepted`, o.batches * o.batchSize);
      res.workloads.batch = await measureBatch(sys, { batchSize: o.batchSize, batches: o.batches }, progress);
    }
    if (wants("flat-out")) res.workloads.flatOut = await measureFlatOut(sys, { runs: o.runs, batchSize: o.batchSize, timeoutMs }, progress);
    if (wants("offered")) {
      for (const perSec of o.rates) res.workloads.offered.push(await measureOffered(sys, { perSec, seconds: o.seconds, timeoutMs }, progress));
    }
    res.processes = await sys.processes();
    res.cpuSeconds = cpuDuring(before, res.processes, process.cpuUsage(clientBefore));
  } catch (err) {
    if (interrupted) throw err;
    const why = sys.explain?.();
    res.error = `${err instanceof Error ? err.message : String(err)}${why ? `\n${why}` : ""}`;
    log(`${label}: ${res.error}`);
  } finally {
    res.workloadsUs = { fromUs, toUs: monotonicUs() };
    current = undefined;
    t = nowMs();
    await sys.stop();
    log(`${label}: stopped in ${round(nowMs() - t, 0)} ms`);
  }
  return res;
}

/** CPU seconds each component used between two readings (summed over its processes), and the bench's own as `bench (client)`. */
function cpuDuring(before: readonly ProcessUsage[], after: readonly ProcessUsage[], client: NodeJS.CpuUsage): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of after) {
    const start = before.find((b) => b.pid === p.pid)?.cpuSeconds ?? 0;
    out[p.component] = round((out[p.component] ?? 0) + p.cpuSeconds - start);
  }
  out["bench (client)"] = round((client.user + client.system) / 1e6);
  return out;
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
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\nSee npm run bench -- --help\n`);
    return err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true;
    log(`${signal}: stopping every server and worker`);
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const started = nowMs();
  const conditions = collectConditions();
  await mkdir(dirname(o.out), { recursive: true });
  const profileDir = o.profile && o.systems.some(isOffload) ? await mkdtemp(join(dirname(o.out), "cpu-profile-")) : undefined;
  const systems: SystemResults[] = [];
  try {
    // Passes take turns (offload, bullmq, jetstream, offload, …) so that a slow spell of the machine hits all alike.
    for (let repeat = 1; repeat <= o.repeat; repeat++) {
      for (const name of o.systems) systems.push(await benchSystem(name, repeat, o, conditions, profileDir));
    }
  } finally {
    await cleanup();
  }
  conditions.loadAvgEnd = loadAvg1();
  const { out, ...options } = o;
  const report: Report = { conditions, options, systems, targets: measureTargets(systems) };
  if (profileDir) {
    report.profiles = [];
    for (const system of OFFLOAD_SYSTEMS.filter((s) => o.systems.includes(s))) {
      for (const [part, what] of [["api", "the run API"], ["worker", "the first worker"]] as const) {
        // With --repeat, the last pass's profile, cut to that pass's workloads (the start-up left out).
        const file = await newestProfile(join(profileDir, system, part));
        const window = systems.filter((s) => s.name === system).at(-1)?.workloadsUs;
        if (file) report.profiles.push({ system, process: what, file: relative(ROOT, file), summary: await summarizeCpuProfile(file, { root: ROOT, ...(window ? { window } : {}) }) });
        else log(`no CPU profile of ${what} of ${system} was written in ${join(profileDir, system, part)} (did it exit cleanly?)`);
      }
    }
  }
  process.stdout.write(`${formatReport(report)}\n`);
  const seconds = round((nowMs() - started) / 1000, 1);
  await writeFile(out, `${JSON.stringify({ ...report, durationSeconds: seconds }, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), out) || out} (${seconds} s in all)`);
  return systems.some((s) => s.error) ? 1 : 0;
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
