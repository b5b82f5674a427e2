import { readFile } from "node:fs/promises";

/** A process's peak resident set size (`VmHWM` in /proc), or null once it has exited or on a system without /proc. */
export async function peakRssBytes(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kib = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)?.[1];
    return kib === undefined ? null : Number(kib) * 1024;
  } catch {
    return null;
  }
}
