import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT, pgBin } from "../test/support/index.js";

/** What the numbers were measured on. */
export interface Conditions {
  /** When the bench started, ISO 8601 UTC. */
  at: string;
  cpuModel: string;
  cpuCount: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  natsServer: string;
  postgres: string;
  pglite: string;
  redisServer: string;
  bullmq: string;
  /** The short hash of HEAD, with `+dirty` when tracked files had uncommitted changes (then the numbers are of HEAD plus those). */
  gitCommit: string;
  /** Whether tracked files differed from HEAD when the bench started. */
  gitDirty: boolean;
  /** 1-minute load average when the bench started (other work on the machine skews the numbers). */
  loadAvgStart: number;
  /** 1-minute load average when the bench ended. */
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
    redisServer: /v=(\S+)/.exec(tryRun(process.env.REDIS_SERVER_BIN || "redis-server", ["--version"]))?.[1] ?? "unknown",
    bullmq: packageVersion("bullmq"),
    ...git(),
    loadAvgStart: loadAvg1(),
  };
}

/** The versions the printout names, short: `nats-server v2.9.10`, `PostgreSQL 15.18`, … */
export function versionsLine(c: Conditions): string {
  const pg = /\(PostgreSQL\) (\S+)/.exec(c.postgres)?.[1] ?? c.postgres;
  const nats = c.natsServer.replace(/^nats-server:\s*/, "");
  return `node ${c.node}, nats-server ${nats}, PostgreSQL ${pg}, PGlite ${c.pglite}, redis-server ${c.redisServer}, BullMQ ${c.bullmq}`;
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

function git(): { gitCommit: string; gitDirty: boolean } {
  const head = tryRun("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]);
  if (head === "unknown") return { gitCommit: head, gitDirty: false };
  const status = tryRun("git", ["-C", ROOT, "status", "--porcelain", "--untracked-files=no"]);
  const dirty = status !== "" && status !== "unknown";
  return { gitCommit: dirty ? `${head}+dirty` : head, gitDirty: dirty };
}
