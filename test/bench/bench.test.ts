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
    const small = ["--quick", "--calls", "100", "--warmup", "5", "--batches", "1", "--batch-size", "200", "--runs", "400", "--rates", "20,60", "--duration", "2"];
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
  });

  it("profiles the run API and a worker and names the frames their time went to", () => {
    expect(report.profiles?.map((p) => p.process)).toEqual(["the run API", "the first worker"]);
    const [api, worker] = report.profiles!;
    expect(api!.file).toMatch(/\.cpuprofile$/);
    expect(api!.summary.busyMs).toBeGreaterThan(0);
    expect(api!.summary.areas.map((a) => a.area)).toContain("offload: operator");
    expect(worker!.summary.areas.map((a) => a.area)).toContain("offload: sdk");
    expect(run.output()).toContain("Where the run API's time went");
    expect(run.output()).toContain("Where the first worker's time went");
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
