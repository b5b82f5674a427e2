import { readdir, readFile } from "node:fs/promises";

/** What /proc says of one process: its peak resident set size and the CPU it has used. */
export interface ProcReading {
  /** Peak resident set size (`VmHWM`), bytes. */
  peakRssBytes: number;
  /** User plus system CPU time since it started, seconds. */
  cpuSeconds: number;
}

/** Clock ticks per second of /proc's CPU times: 100 on every Linux this runs on (USER_HZ). */
const TICKS_PER_SECOND = 100;

/** The process's peak RSS and CPU time, or null once it has exited (or on a system without /proc). */
export async function readProc(pid: number | undefined): Promise<ProcReading | null> {
  if (pid === undefined) return null;
  try {
    const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, "utf8"), readFile(`/proc/${pid}/stat`, "utf8")]);
    const kib = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)?.[1];
    // Fields after the command (which may hold spaces and parentheses) start at field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (kib === undefined || !Number.isFinite(ticks)) return null;
    return { peakRssBytes: Number(kib) * 1024, cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** The pids of the processes whose parent is `ppid` (e.g. a PostgreSQL server's backends). */
export async function childPids(ppid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (parent === ppid) out.push(Number(name));
  }
  return out;
}
