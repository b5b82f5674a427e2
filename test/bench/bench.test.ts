/**
 * `npm run bench` as a user runs it, at smoke-test sizes: every system starts,
 * every workload completes every run it submitted, the tables and the JSON
 * say so, and nothing it started outlives it. No timing is asserted here:
 * speed is bench/'s to measure, not a test's to judge.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Report } from "../../bench/report.js";
import { killAll, ROOT, startProcess, type Child } from "../support/index.js";

const TSX = join(ROOT, "node_modules/.bin/tsx");

function bench(args: string[]): Child {
  return startProcess("bench", TSX, ["bench/run.ts", ...args], {}, ROOT);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm run bench", () => {
  let dir: string;
  let run: Child;
  let exit: number | string;
  let report: Report;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-bench-"));
    // offload-pglite is left out: its API alone takes longer to start (PGlite's migrations) than this whole test may add.
    // test/bench/report.test.ts covers its column and the targets from hand-made results.
    const small = ["--systems", "offload,bullmq,jetstream", "--quick", "--calls", "100", "--warmup", "5", "--batches", "1", "--batch-size", "200", "--runs", "400", "--rates", "20,60", "--duration", "2"];
    run = bench([...small, "--profile", "--out", join(dir, "report.json")]);
    exit = await run.exited;
    report = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as Report;
  }, 180_000);

  afterAll(async () => {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs Offload, BullMQ and the JetStream floor through every workload and exits 0", () => {
    expect(exit, run.output().slice(-3000)).toBe(0);
    expect(report.systems.map((s) => s.name)).toEqual(["offload", "bullmq", "jetstream"]);
    for (const s of report.systems) {
      expect(s.error, s.name).toBeUndefined();
      expect(s.description, s.name).toBeTruthy();
      const w = s.workloads;
      expect(w.accept?.callMs.n, s.name).toBe(100);
      expect(w.batch?.batchMs.n, s.name).toBe(1);
      // Every run submitted to the workers was followed to completion and timed.
      expect(w.flatOut?.runs, s.name).toBe(400);
      expect(w.flatOut?.toCompletedMs.n, s.name).toBe(400);
      expect(w.offered.map((f) => [f.offeredPerSec, f.runs, f.toStartMs.n]), s.name).toEqual([[20, 40, 40], [60, 120, 120]]);
      // A run is recorded completed no earlier than it started.
      for (const f of [w.flatOut!, ...w.offered]) expect(f.toCompletedMs.min, s.name).toBeGreaterThanOrEqual(f.toStartMs.min);
      // Both workers are measured, and they did the work: each used CPU during the workloads.
      const workers = s.processes.filter((p) => p.component === "worker");
      expect(workers, s.name).toHaveLength(2);
      for (const w of workers) expect(w.peakRssBytes, s.name).toBeGreaterThan(10 * 2 ** 20);
      expect(s.cpuSeconds.worker, s.name).toBeGreaterThan(0);
      expect(s.cpuSeconds["bench (client)"], s.name).toBeGreaterThan(0);
    }
    const offload = report.systems[0]!;
    expect(offload.processes.map((p) => p.component)).toEqual(expect.arrayContaining(["offload-api", "nats-server", "postgres"]));
    expect(offload.cpuSeconds["offload-api"]).toBeGreaterThan(0);
    expect(offload.cpuSeconds.postgres).toBeGreaterThan(0);
    // Offload records an outcome after the worker finished it: the lag is measured, and not negative.
    expect(offload.workloads.flatOut?.recordLagMs?.min).toBeGreaterThanOrEqual(0);
  });

  it("prints one table per workload with the three side by side and the ratios, and progress on stderr", () => {
    const out = run.output();
    for (const title of ["1. Accept, one at a time", "2. Accept in batches", "3. Flat out", "4. Offered load 20 runs/s", "5. Offered load 60 runs/s", "6. CPU seconds", "7. Peak RSS"]) {
      expect(out).toContain(title);
    }
    expect(out).toMatch(/^\s+offload\s+bullmq\s+jetstream\s+offload\/bullmq\s+offload\/jetstream$/m);
    expect(out).toMatch(/^completed\/s\s+\d+\s+\d+\s+\d+\s+[\d.]+x\s+[\d.]+x$/m);
    expect(out).toMatch(/\[bench\] offload: flat out: completed \d+\/400/);
    // The same runs went to every system, so CPU per run divides by the same count.
    const runs = 5 + 100 + 100 + 200 + 400 + 40 + 120;
    expect(out).toMatch(new RegExp(`^runs submitted\\s+${runs}\\s+${runs}\\s+${runs}\\s+1\\.0x\\s+1\\.0x$`, "m"));
    expect(out).toMatch(/^CPU ms per run \(no client\)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+x\s+[\d.]+x$/m);
  });

  it("says what it ran on and ends with issue 15's targets as measured", () => {
    const c = report.conditions;
    expect(c.gitCommit).toMatch(/^[0-9a-f]{7,}(\+dirty)?$/);
    expect(c.gitCommit.endsWith("+dirty")).toBe(c.gitDirty);
    for (const v of [c.node, c.natsServer, c.postgres, c.redisServer, c.bullmq, c.pglite]) expect(v).not.toBe("unknown");
    expect(c.loadAvgEnd).toBeGreaterThanOrEqual(0);
    const out = run.output();
    expect(out).toMatch(/^ {2}versions {5}node v\d+\.\d+\.\d+, nats-server v[\d.]+, PostgreSQL [\d.]+, PGlite [\d.]+, redis-server [\d.]+, BullMQ [\d.]+$/m);
    expect(out).toContain("Issue 15's targets, as measured in this run");
    // offload ran with BullMQ: its flat-out target is a ratio with a verdict; offload-pglite did not run, and says so.
    const flat = report.targets?.filter((t) => t.target.startsWith("flat out"));
    expect(flat?.find((t) => t.system === "offload")).toMatchObject({ measured: expect.stringMatching(/^[\d,]+\/s vs [\d,]+\/s = [\d.]+x$/), met: expect.any(Boolean) });
    expect(flat?.find((t) => t.system === "offload-pglite")).toMatchObject({ measured: "not in --systems" });
    expect(out).toMatch(/^peak RSS of the run API < 150 MB\s+\d+ MB\s+(yes|NO)\s+not in --systems\s+-$/m);
  });

  it("profiles the run API and a worker and names the frames their time went to", () => {
    expect(report.profiles?.map((p) => [p.system, p.process])).toEqual([["offload", "the run API"], ["offload", "the first worker"]]);
    const [api, worker] = report.profiles!;
    expect(api!.file).toMatch(/\.cpuprofile$/);
    expect(api!.summary.busyMs).toBeGreaterThan(0);
    expect(api!.summary.areas.map((a) => a.area)).toContain("offload: operator");
    expect(worker!.summary.areas.map((a) => a.area)).toContain("offload: sdk");
    expect(run.output()).toContain("Where the run API's time went, offload");
    expect(run.output()).toContain("Where the first worker's time went, offload");
  });

  it("leaves no process it started running", () => {
    // offload-api, nats-server, PostgreSQL's processes and two workers; redis-server and two workers; nats-server and two workers.
    const pids = report.systems.flatMap((s) => s.processes.map((p) => p.pid));
    expect(pids.length).toBeGreaterThanOrEqual(10);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("answers --help, and refuses a bad flag naming it with exit code 2", async () => {
    const help = bench(["--help"]);
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain("--workers N");
    const bad = bench(["--rates", "fast"]);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('--rates: expected an integer from 1 to 100000, got "fast"');
  });
});
