import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startProcess, type Child } from "../support/index.js";

export const CONTROLLER_BIN = join(ROOT, "operator/dist/bin/offload-controller.js");
export { API_BIN, WORKER_BIN, ROOT } from "../support/index.js";
export const TASKS_FIXTURE = join(ROOT, "test/worker/fixtures/tasks.mjs");

/** A started command with its stderr kept apart: the one line for the person at the terminal goes there. */
export interface Started {
  readonly child: Child;
  stderr(): string;
}

/** Starts a built command with `env` added (and `unset` removed) from this process's environment. */
export function start(name: string, bin: string, args: string[], env: Record<string, string>, unset: string[] = [], cwd?: string): Started {
  const base: Record<string, string | undefined> = { ...env };
  for (const v of unset) base[v] = undefined;
  // An undefined value removes the variable: spawn() leaves it out of the child's environment.
  const child = startProcess(name, process.execPath, [bin, ...args], base, cwd);
  let err = "";
  child.proc.stderr?.on("data", (b: Buffer) => (err += b.toString()));
  return { child, stderr: () => err };
}

/** Runs a command to its end: exit code, everything it printed, and its stderr alone. */
export async function run(name: string, bin: string, args: string[], env: Record<string, string>, unset: string[] = [], cwd?: string): Promise<{ code: number | string; out: string; err: string }> {
  const s = start(name, bin, args, env, unset, cwd);
  const code = await s.child.exited;
  return { code, out: s.child.output(), err: s.stderr() };
}

/** A port something really listens on (on 127.0.0.1), for "port in use"; `port` asks for a given one. */
export async function occupyPort(port = 0): Promise<{ port: number; server: Server } | undefined> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => (err.code === "EADDRINUSE" ? resolve(undefined) : reject(err)));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? { port: addr.port, server } : undefined);
    });
  });
}

/** A temporary folder, and its removal. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
