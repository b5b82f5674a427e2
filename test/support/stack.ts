import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { OffloadClient } from "@offload/sdk";
import { startNats, type NatsServer } from "./nats.js";
import { startPostgres, type PostgresServer } from "./postgres.js";
import { freePort, waitFor } from "./ports.js";
import { startProcess, type Child } from "./process.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const API_BIN = join(ROOT, "operator/dist/bin/offload-api.js");
export const WORKER_BIN = join(ROOT, "worker/dist/bin/offload-worker.js");
/** The Node flags the images start the run API with (Dockerfile, the chart): tests and the bench run it as users do. */
export const API_NODE_FLAGS = ["--max-semi-space-size=8", "--max-old-space-size=192"] as const;
/** The Node flags the worker image starts `offload-worker` with (Dockerfile). */
export const WORKER_NODE_FLAGS = ["--max-semi-space-size=2"] as const;

/** Where the run API keeps its runs in a test. */
export type DbKind = "postgres" | "pglite";

export interface StackOptions {
  db?: DbKind;
  /** Extra environment for the API. */
  apiEnv?: Record<string, string>;
  /** Node flags for the API process, e.g. `--cpu-prof` (which NODE_OPTIONS may not carry). */
  apiNodeArgs?: string[];
  token?: string;
}

export interface WorkerOptions {
  module: string;
  /** Node flags for the worker process, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  tasks?: string[];
  concurrency?: number;
  env?: Record<string, string>;
}

export interface RunningWorker {
  child: Child;
  port: number;
}

/** A real nats-server, a real database and the real `offload-api` process, with workers on demand. */
export interface Stack {
  readonly nats: NatsServer;
  /** The PostgreSQL server the API uses (shared by the stacks of a test file), unless it runs on PGlite. */
  readonly postgres: PostgresServer | undefined;
  /** The API's database on {@link postgres} (a second API replica may share it); undefined on PGlite. */
  readonly databaseUrl: string | undefined;
  readonly apiUrl: string;
  readonly dir: string;
  readonly client: OffloadClient;
  api: Child;
  readonly workers: RunningWorker[];
  /** Starts (or restarts, after it exited) the API with `env` added to the stack's API env. */
  startApi(env?: Record<string, string>): Promise<Child>;
  startWorker(options: WorkerOptions): Promise<RunningWorker>;
  /** Stops everything this stack started; safe to call twice and after a failure. */
  stop(): Promise<void>;
}

let sharedPg: Promise<PostgresServer> | undefined;

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const db = options.db ?? "postgres";
  const dir = await mkdtemp(join(tmpdir(), "offload-stack-"));
  const nats = await startNats();
  let pgServer: PostgresServer | undefined;
  let databaseUrl: string | undefined;
  try {
    if (db === "postgres") {
      // A shared server that failed to start is not kept: the next stack tries again.
      pgServer = await (sharedPg ??= startPostgres().catch((err: unknown) => {
        sharedPg = undefined;
        throw err;
      }));
      databaseUrl = await pgServer.createDatabase(`t_${randomUUID().replace(/-/g, "")}`);
    }
  } catch (err) {
    // The caller gets no stack to stop: what was started so far is stopped here.
    await nats.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const baseEnv: Record<string, string> = {
    OFFLOAD_API_PORT: String(apiPort),
    OFFLOAD_API_HOST: "127.0.0.1",
    OFFLOAD_NATS_URL: nats.url,
    OFFLOAD_LOG_LEVEL: "info",
    OFFLOAD_DATA_DIR: join(dir, "pglite"),
    ...(databaseUrl ? { OFFLOAD_DATABASE_URL: databaseUrl } : {}),
    ...(options.token ? { OFFLOAD_API_TOKEN: options.token } : {}),
    ...options.apiEnv,
  };
  const workers: RunningWorker[] = [];
  const stack: Stack = {
    nats,
    postgres: pgServer,
    databaseUrl,
    apiUrl,
    dir,
    client: new OffloadClient({ apiUrl, token: options.token ?? "", requestTimeoutMs: 30_000 }),
    api: undefined as unknown as Child,
    workers,
    async startApi(env = {}) {
      const child = startProcess("offload-api", process.execPath, [...API_NODE_FLAGS, ...(options.apiNodeArgs ?? []), API_BIN], { ...baseEnv, OFFLOAD_DATABASE_URL: databaseUrl, ...env });
      stack.api = child;
      await untilReady(child, "the run API to be ready", `${apiUrl}/readyz`, 60_000);
      return child;
    },
    async startWorker(w) {
      const port = await freePort();
      const args = [...WORKER_NODE_FLAGS, ...(w.nodeArgs ?? []), WORKER_BIN, "--module", w.module];
      if (w.tasks) args.push("--tasks", w.tasks.join(","));
      if (w.concurrency) args.push("--concurrency", String(w.concurrency));
      const child = startProcess(`offload-worker#${workers.length}`, process.execPath, args, {
        OFFLOAD_NATS_URL: nats.url,
        OFFLOAD_API_URL: apiUrl,
        OFFLOAD_WORKER_PORT: String(port),
        OFFLOAD_LOG_LEVEL: "info",
        ...(options.token ? { OFFLOAD_API_TOKEN: options.token } : {}),
        ...w.env,
      });
      await untilReady(child, "the worker to be ready", `http://127.0.0.1:${port}/readyz`, 30_000);
      const running = { child, port };
      workers.push(running);
      return running;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.child.stop(5000)));
      await stack.api?.stop(5000);
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await stack.startApi();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

/** Polls `url` until it answers 2xx; fails at once, with the process's output, if the process exits first. */
export async function untilReady(child: Child, what: string, url: string, timeoutMs: number): Promise<void> {
  const state = await waitFor(
    what,
    async () => {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) return "exited" as const;
      return (await fetch(url)).ok ? ("ready" as const) : undefined;
    },
    timeoutMs,
    100,
  );
  if (state === "exited") throw new Error(`${child.name} exited before it was ready:\n${child.output().slice(-3000)}`);
}

/** Stops the PostgreSQL server shared by the stacks of this test file. */
export async function stopSharedPostgres(): Promise<void> {
  const pg = sharedPg;
  sharedPg = undefined;
  if (pg) await (await pg).stop();
}

/** Polls the run until `done(run)` holds; on a timeout the error shows the run as last read. */
export async function waitForRun<R extends { state: string }>(get: () => Promise<R>, done: (run: R) => boolean, what: string, timeoutMs = 30_000): Promise<R> {
  let last: R | undefined;
  try {
    return await waitFor(what, async () => {
      last = await get();
      return done(last) ? last : undefined;
    }, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the run as last read: ${JSON.stringify(last)}`);
  }
}
