import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT, pgBin } from "../test/support/index.js";

/** What the numbers were measured on. */
export interface Conditions {
  at: string;
  cpuModel: string;
  cpuCount: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  natsServer: string;
  postgres: string;
  pglite: string;
  gitCommit: string;
  /** 1-minute load average when the bench started (other work on the machine skews the numbers). */
  loadAvgStart: number;
  loadAvgEnd?: number;
}

export function collectConditions(): Conditions {
  const cpu = cpus();
  return {
    at: new Date().toISOString(),
    cpuModel: cpu[0]?.model.trim() ?? "unknown",
    cpuCount: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    natsServer: tryRun(process.env.NATS_SERVER_BIN ?? "nats-server", ["--version"]),
    postgres: tryRun(pgBin("postgres"), ["--version"]),
    pglite: packageVersion("@electric-sql/pglite"),
    gitCommit: gitCommit(),
    loadAvgStart: loadAvg1(),
  };
}

export function loadAvg1(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 5000 }).toString().trim();
  } catch {
    return "unknown";
  }
}

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

function gitCommit(): string {
  const head = tryRun("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]);
  if (head === "unknown") return head;
  const dirty = tryRun("git", ["-C", ROOT, "status", "--porcelain", "--untracked-files=no"]);
  return dirty && dirty !== "unknown" ? `${head}+dirty` : head;
}
