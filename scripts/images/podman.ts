/**
 * Running podman (and the few other commands the image build needs) as child
 * processes: output streamed line by line to a progress callback, the child
 * killed when the caller aborts, and a missing command named with what to run.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** A command the image build needs is not installed. */
export class MissingToolError extends Error {
  override readonly name = "MissingToolError";
  constructor(readonly tool: string) {
    super(`${tool} is not installed; run \`bash scripts/setup.sh\` (it installs Debian's podman, runc and debootstrap)`);
  }
}

/** A command exited non-zero; `output` holds the end of what it printed. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | string,
    readonly output: string,
  ) {
    super(`\`${command}\` failed (${exitCode}):\n${output.slice(-4000)}`);
  }
}

export interface RunOptions {
  /** Called with every line the command prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Bytes written to the command's stdin, then closed. */
  input?: NodeJS.ReadableStream;
  signal?: AbortSignal;
  cwd?: string;
}

// /usr/sbin is not on every user's PATH, and Debian puts runc, debootstrap and chroot there.
const searchPath = (): string => `${process.env.PATH ?? ""}:/usr/sbin:/sbin`;

/** True when `tool` can be run: an executable file of that name on the PATH or in /usr/sbin or /sbin. */
export function hasTool(tool: string): boolean {
  return searchPath()
    .split(delimiter)
    .filter(Boolean)
    .some((dir) => {
      try {
        accessSync(join(dir, tool), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** Throws MissingToolError unless every tool is installed. */
export function requireTools(...tools: string[]): void {
  for (const t of tools) if (!hasTool(t)) throw new MissingToolError(t);
}

/** Runs `command args`; resolves with its stdout, rejects with CommandError on a non-zero exit. */
export function run(command: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason as Error);
    const env = { ...process.env, PATH: searchPath() };
    const child = spawn(command, args, { cwd: opts.cwd, env, stdio: [opts.input ? "pipe" : "ignore", "pipe", "pipe"] });
    let stdout = "";
    let all = "";
    let partial = "";
    const onData = (isStdout: boolean) => (b: Buffer) => {
      const text = b.toString();
      if (isStdout) stdout += text;
      all = (all + text).slice(-200_000);
      if (!opts.onLine) return;
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) opts.onLine(l);
    };
    child.stdout?.on("data", onData(true));
    child.stderr?.on("data", onData(false));
    if (opts.input && child.stdin) {
      opts.input.pipe(child.stdin);
      // The reader may exit early (its own failure); its exit code says why, not EPIPE.
      child.stdin.on("error", () => undefined);
    }
    const abort = (): void => {
      child.kill("SIGTERM");
    };
    opts.signal?.addEventListener("abort", abort, { once: true });
    child.once("error", (err: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener("abort", abort);
      reject(err.code === "ENOENT" ? new MissingToolError(command) : err);
    });
    child.once("close", (code, sig) => {
      opts.signal?.removeEventListener("abort", abort);
      if (partial.trim() && opts.onLine) opts.onLine(partial);
      if (opts.signal?.aborted) return reject(opts.signal.reason as Error);
      if (code === 0) resolve(stdout);
      else reject(new CommandError(`${command} ${args.join(" ")}`, code ?? sig ?? -1, all));
    });
  });
}

/** True when podman has an image by this name. */
export async function imageExists(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("podman", ["image", "exists", name], { stdio: "ignore" });
    child.once("error", () => resolve(false));
    child.once("close", (code) => resolve(code === 0));
  });
}
