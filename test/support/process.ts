import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

/** A child process whose output is kept (and shown when a test fails). */
export interface Child {
  readonly proc: ChildProcess;
  readonly name: string;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output(): string;
  /** Resolves with the exit code (or signal name) once it exits. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
  /** Waits until the output contains `text` (or matches it). */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

const live = new Set<Child>();

/**
 * Starts `command args` with `env` added to this process's environment.
 * `group`: run it in a process group of its own and signal the whole group, for
 * a command that starts servers of its own (`npm run dev`), so that a test that
 * fails half-way still leaves none of them behind.
 */
export function startProcess(name: string, command: string, args: string[], env: Record<string, string | undefined> = {}, cwd?: string, options: { group?: boolean } = {}): Child {
  const group = options.group === true;
  const proc = spawn(command, args, { env: { ...process.env, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"], detached: group });
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (group && proc.pid !== undefined) process.kill(-proc.pid, sig);
      else proc.kill(sig);
    } catch {
      // already gone
    }
  };
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const l of listeners) l();
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => {
    proc.once("exit", (code, sig) => {
      live.delete(child);
      // What a group's leader started does not outlive it.
      if (group) signal("SIGKILL");
      resolve(code ?? sig ?? -1);
    });
    proc.once("error", (err) => {
      out += `\n[spawn error] ${String(err)}`;
      live.delete(child);
      resolve(-1);
    });
  });
  const child: Child = {
    proc,
    name,
    output: () => out,
    exited,
    kill: (sig) => {
      if (proc.exitCode === null && proc.signalCode === null) signal(sig);
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        // The leader is gone; what it started may not be.
        if (group) signal("SIGKILL");
        return exited;
      }
      signal("SIGTERM");
      const t = setTimeout(() => signal("SIGKILL"), graceMs);
      const r = await exited;
      clearTimeout(t);
      if (group) signal("SIGKILL");
      return r;
    },
    waitForOutput(text, timeoutMs = 20_000) {
      const has = (): boolean => (typeof text === "string" ? out.includes(text) : text.test(out));
      if (has()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (has()) done(undefined);
        };
        const timer = setTimeout(() => done(new Error(`${name}: no "${String(text)}" in output after ${timeoutMs} ms:\n${out.slice(-4000)}`)), timeoutMs);
        const done = (err: Error | undefined): void => {
          clearTimeout(timer);
          listeners.delete(check);
          void exited.then(() => undefined);
          if (err) reject(err);
          else resolve();
        };
        listeners.add(check);
        void exited.then((code) => {
          if (!has()) done(new Error(`${name} exited (${code}) before printing "${String(text)}":\n${out.slice(-4000)}`));
        });
      });
    },
  };
  live.add(child);
  return child;
}

/** Kills every child still running (the last line of defence in `afterAll`). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop(3000)));
}

process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export { once };
