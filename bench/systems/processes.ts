import { startProcess, type Child } from "../../test/support/index.js";
import { peakRssBytes } from "../rss.js";
import type { ProcessRss } from "./system.js";

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

/** The peak RSS of each named process, and of the largest of `workers` as `worker`; processes gone are left out. */
export async function rssOf(named: Record<string, Child | undefined>, workers: readonly Child[]): Promise<ProcessRss[]> {
  const out: ProcessRss[] = [];
  for (const [component, child] of Object.entries(named)) {
    const pid = child?.proc.pid;
    const bytes = await peakRssBytes(pid);
    if (pid !== undefined && bytes !== null) out.push({ component, pid, peakRssBytes: bytes });
  }
  let largest: ProcessRss | undefined;
  for (const w of workers) {
    const pid = w.proc.pid;
    const bytes = await peakRssBytes(pid);
    if (pid !== undefined && bytes !== null && (!largest || bytes > largest.peakRssBytes)) largest = { component: "worker", pid, peakRssBytes: bytes };
  }
  if (largest) out.push(largest);
  return out;
}
