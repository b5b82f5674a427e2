/**
 * `offload-worker --watch`: a supervisor that runs the worker as a child
 * process and, after a change to the task module or a file it imports, stops
 * it the way SIGTERM always does (stop pulling, let runs in flight finish up
 * to the drain time) and starts a new one.
 *
 * Why a child rather than a reload in this process: an ES module cannot be
 * unloaded, so re-importing changed code in place would keep every old copy
 * (and its timers, connections and module state) alive, and files the module
 * imports would still resolve to their first, cached version. A fresh process
 * loads everything anew and frees the old one entirely; the cost (a second or
 * so to start Node, tsx and the NATS connection) is fine for a dev loop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";

/** The flag that turns the supervisor on. */
export const WATCH_FLAGS: readonly string[] = ["--watch", "-w"];

/** Set in the child's environment; the child then reports what it imports and exits when the supervisor goes. */
export const WATCH_CHILD_ENV = "OFFLOAD_WORKER_WATCH_CHILD";

/** What the child sends its supervisor over the IPC channel. */
export interface ImportMessage {
  type: "offload-watch:import";
  file: string;
}

/** The part of `--help` about module kinds and `--watch`. */
export const WATCH_HELP = `
Task modules:
  --module takes JavaScript (.js, .mjs, .cjs) or TypeScript (.ts, .mts, .cts).
  TypeScript is compiled as it loads, by tsx (a dependency of @offload/worker):
  no build step, and types are not checked (run tsc --noEmit for that).

Development:
  -w, --watch                    run the worker in a child process and restart it
                                 after a change to the module or any file it imports
                                 (outside node_modules). Runs in flight finish first,
                                 up to the drain time, as on SIGTERM. After a crash or
                                 a module that fails to load, waits for the next change.
                                 For a dev loop; pods run without it.
`;

/** Splits `--watch`/`-w` from the other arguments. */
export function takeWatchFlag(argv: readonly string[]): { watch: boolean; args: string[] } {
  const args = argv.filter((a) => !WATCH_FLAGS.includes(a));
  return { watch: args.length !== argv.length, args };
}

/** Options of {@link superviseWatch}. */
export interface WatchOptions {
  /** The worker's arguments, without `--watch`. */
  args: readonly string[];
  /** Absolute path of the task module: watched from the start, before the child reports anything. */
  module: string;
  logger: Logger;
  /** Quiet time after the last change before restarting, since editors save in several writes. @defaultValue 150 */
  debounceMs?: number;
}

/** A running supervisor. */
export interface Supervisor {
  /**
   * Stops the watchers and the child (draining, as on SIGTERM); resolves with the child's exit code.
   * Called again with `force`, the child stops at once, as on a second SIGTERM.
   */
  stop(force?: boolean): Promise<number>;
  /** Resolves with the exit code once the supervisor stopped. */
  readonly done: Promise<number>;
}

const WORKER_BIN = fileURLToPath(new URL("./bin/offload-worker.js", import.meta.url));

/** Starts the worker as a child process and restarts it after each change. */
export function superviseWatch(options: WatchOptions): Supervisor {
  const { logger } = options;
  const debounceMs = options.debounceMs ?? 150;
  const watchers = new Map<string, FSWatcher>(); // by directory
  const files = new Set<string>();
  let child: ChildProcess | undefined;
  let childExited: Promise<number> = Promise.resolve(0);
  let stopping = false;
  let restarting: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  // One SIGTERM per child: a second one makes the worker abandon its runs in flight.
  const signalled = new WeakSet<ChildProcess>();
  const terminate = (proc: ChildProcess | undefined, force = false): void => {
    if (!proc || (signalled.has(proc) && !force)) return;
    signalled.add(proc);
    proc.kill("SIGTERM");
  };
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const start = (): void => {
    // Its own process group: a Ctrl-C in the terminal reaches only the supervisor, which passes on one
    // SIGTERM; a second SIGTERM would make the worker abandon its runs in flight.
    const proc = spawn(process.execPath, [...process.execArgv, WORKER_BIN, ...options.args], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, [WATCH_CHILD_ENV]: "1" },
      detached: true,
    });
    child = proc;
    proc.on("message", (m: unknown) => {
      if (isImportMessage(m)) watchFile(m.file);
    });
    childExited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => {
        if (child === proc) child = undefined;
        const exitCode = code ?? (signal ? 1 : 0);
        if (!stopping && !restarting) logger.warn({ exitCode, signal }, "watch: the worker exited; waiting for a change to the module to start it again");
        resolve(exitCode);
      });
    });
  };

  const restart = (changed: string): void => {
    if (stopping) return;
    if (restarting) {
      again = true;
      return;
    }
    restarting = (async () => {
      const running = child;
      if (running) {
        logger.info({ changed, pid: running.pid }, "watch: change; stopping the worker (runs in flight finish first), then starting it again");
        terminate(running);
        await childExited;
      } else {
        logger.info({ changed }, "watch: change; starting the worker");
      }
      if (!stopping) start();
    })().finally(() => {
      restarting = undefined;
      if (again) {
        again = false;
        restart(changed);
      }
    });
  };

  const onChange = (file: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => restart(file), debounceMs);
  };

  // A directory rather than the file: editors that save by writing a new file and renaming it over the
  // old one would leave a watcher on the file watching nothing.
  const watchFile = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const dir = dirname(file);
    if (watchers.has(dir)) return;
    try {
      const w = watch(dir, (_event, name) => {
        const changed = name ? `${dir}/${name.toString()}` : undefined;
        if (changed && files.has(changed)) onChange(changed);
      });
      w.on("error", (err) => logger.warn({ err, dir }, "watch: cannot watch the folder any more"));
      watchers.set(dir, w);
    } catch (err) {
      logger.warn({ err, dir }, "watch: cannot watch the folder; changes there will not restart the worker");
    }
  };

  watchFile(options.module);
  logger.info({ module: basename(options.module) }, "watch: starting the worker; it restarts after a change to the module or a file it imports");
  start();

  const stop = async (force = false): Promise<number> => {
    if (!stopping) {
      stopping = true;
      clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      terminate(child);
      await restarting;
      finish(await childExited);
    } else if (force) {
      terminate(child, true);
    }
    return done;
  };
  return { stop, done };
}

function isImportMessage(m: unknown): m is ImportMessage {
  return typeof m === "object" && m !== null && (m as ImportMessage).type === "offload-watch:import" && typeof (m as ImportMessage).file === "string";
}

/** In the child: reports each imported file to the supervisor. */
export function reportImport(file: string): void {
  const message: ImportMessage = { type: "offload-watch:import", file };
  process.send?.(message);
}
