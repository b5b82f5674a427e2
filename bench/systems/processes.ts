import { startProcess, type Child } from "../../test/support/index.js";
import { readProc } from "../proc.js";
import type { ProcessUsage } from "./system.js";

/**
 * Starts `n` copies of a peer worker script (`bench/peers/*.mjs`) with plain
 * `node`, as the Offload worker runs, so their memory compares fairly, and
 * waits until each has printed `ready`. Stops the ones started if one fails.
 */
export async function startWorkerProcesses(name: string, script: string, n: number, env: Record<string, string>): Promise<Child[]> {
  const children: Child[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const child = startProcess(`${name}#${i}`, process.execPath, [script], { ...env, BENCH_WORKER_INDEX: String(i) });
      children.push(child);
    }
    await Promise.all(children.map((c) => c.waitForOutput(/^ready$/m, 30_000)));
  } catch (err) {
    await Promise.all(children.map((c) => c.stop(5000)));
    throw err;
  }
  return children;
}

/** Memory and CPU time of each named process and of every worker; processes gone are left out. */
export async function usageOf(named: Record<string, Child | number | undefined>, workers: readonly Child[]): Promise<ProcessUsage[]> {
  const all: [string, number | undefined][] = [
    ...Object.entries(named).map(([component, c]): [string, number | undefined] => [component, typeof c === "number" ? c : c?.proc.pid]),
    ...workers.map((w): [string, number | undefined] => ["worker", w.proc.pid]),
  ];
  const out: ProcessUsage[] = [];
  for (const [component, pid] of all) {
    const r = await readProc(pid);
    if (pid !== undefined && r) out.push({ component, pid, ...r });
  }
  return out;
}
