import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { task, type OffloadClient, type Run } from "@offload/sdk";
import { z } from "zod";
import { ROOT, startStack, stopSharedPostgres, type DbKind, type Stack } from "../../test/support/index.js";
import { childPids } from "../proc.js";
import { usageOf } from "./processes.js";
import type { Lane, RunTimes, SystemStartOptions, SystemUnderTest } from "./system.js";

/** The module Offload's bench workers load: it serves the one task `noop`. */
const TASKS_MODULE = join(ROOT, "bench/peers/offload-tasks.mjs");
const WORK_TASK = "noop";
/** Served by no worker: its runs are recorded and published, never run. */
const IDLE_TASK = "noop-idle";

export interface OffloadStartOptions extends SystemStartOptions {
  db: DbKind;
  /**
   * Profile the run API and the first worker (`--cpu-prof`) into `api/` and
   * `worker/` under this folder; each profile is written when its process
   * exits, i.e. at `stop()`.
   */
  profileDir?: string;
  /** The database and nats-server with their versions, e.g. `PostgreSQL 15.18 + nats-server v2.9.10`. */
  versions: string;
}

function remoteOnly(): never {
  throw new Error("runs in an offload-worker (bench/peers/offload-tasks.mjs), not in the bench");
}

/** The app-side view of the bench's tasks, bound to the stack's client, as an app would declare them. */
function appTasks(client: OffloadClient) {
  const input = z.object({ i: z.number().int() });
  return {
    work: task({ name: WORK_TASK, input, client }, (): null => remoteOnly()),
    idle: task({ name: IDLE_TASK, input, client }, (): null => remoteOnly()),
  } satisfies Record<Lane, unknown>;
}

/**
 * Offload as an app uses it: the built `offload-api` on a real database, a
 * nats-server, and `workers` real `offload-worker` processes, through the SDK.
 * `db: "pglite"` is the system `offload-pglite`: the API with no
 * OFFLOAD_DATABASE_URL, so it keeps its runs in its embedded PGlite database
 * (as `npm run dev` does), which runs inside the API process, so its CPU and
 * memory count as the API's.
 */
export async function startOffload(o: OffloadStartOptions): Promise<SystemUnderTest> {
  const apiEnv: Record<string, string> = { OFFLOAD_LOG_LEVEL: o.logLevel };
  let stack: Stack | undefined;
  const stop = async (): Promise<void> => {
    const s = stack;
    stack = undefined;
    await s?.stop();
    await stopSharedPostgres();
  };
  try {
    const profile = (part: string): string[] => (o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${join(o.profileDir, part)}`] : []);
    stack = await startStack({ db: o.db, apiEnv, apiNodeArgs: profile("api") });
    for (let i = 0; i < o.workers; i++) {
      const nodeArgs = i === 0 ? profile("worker") : [];
      await stack.startWorker({ module: TASKS_MODULE, tasks: [WORK_TASK], concurrency: o.concurrency, nodeArgs, env: { OFFLOAD_LOG_LEVEL: o.logLevel } });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const running = stack;
  const client = running.client;
  const tasks = appTasks(client);
  return {
    name: o.db === "pglite" ? "offload-pglite" : "offload",
    description: `offload-api on ${o.versions}, ${o.workers} offload-worker x ${o.concurrency}`,
    async submitOne(lane, i) {
      return (await tasks[lane].delay({ i })).id;
    },
    async submitBatch(lane, from, n) {
      const handles = await tasks[lane].map(Array.from({ length: n }, (_, k) => ({ i: from + k })), { deferred: true });
      return handles.map((h) => h.id);
    },
    async awaitCompleted(ids, { timeoutMs, onProgress }) {
      const deadline = Date.now() + timeoutMs;
      let lastProgress = 0;
      // Cheap probes while the workers run; the full read comes once nothing is open.
      while (await anyOpen(client)) {
        if (Date.now() > deadline) {
          const done = await readCompleted(client, ids);
          throw new Error(`offload: ${done.size} of ${ids.length} runs COMPLETED after ${timeoutMs / 1000} s`);
        }
        if (Date.now() - lastProgress >= 1000) {
          lastProgress = Date.now();
          const info = (await client.listTasks()).find((t) => t.name === WORK_TASK);
          onProgress(Math.max(0, ids.length - (info ? info.backlog + info.inFlight : 0)));
        }
        await sleep(50);
      }
      const done = await readCompleted(client, ids);
      if (done.size < ids.length) {
        const missing = ids.find((id) => !done.has(id));
        const run = missing ? await client.getRun(missing) : undefined;
        throw new Error(`offload: ${done.size} of ${ids.length} runs COMPLETED; run ${missing} is ${run?.state}: ${JSON.stringify(run?.error)}`);
      }
      return done;
    },
    async processes() {
      const workers = running.workers.map((w) => w.child);
      const usage = await usageOf({ "offload-api": running.api, "nats-server": running.nats.child }, workers);
      // The PostgreSQL server and its backends, the API's pool among them.
      const postmaster = running.postgres?.pid();
      if (postmaster !== undefined) {
        const pids = [postmaster, ...(await childPids(postmaster))];
        usage.push(...(await usageOf(Object.fromEntries(pids.map((pid, i) => [`postgres#${i}`, pid])), [])).map((u) => ({ ...u, component: "postgres" })));
      }
      return usage;
    },
    explain() {
      const children = [running.api, running.nats.child, ...running.workers.map((w) => w.child)];
      const gone = children.find((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
      if (gone) return `${gone.name} exited (${gone.proc.exitCode ?? gone.proc.signalCode}); its last output:\n${gone.output().slice(-3000)}`;
      const api = running.api.output().slice(-3000).trim();
      return `offload-api, nats-server and the workers were all still running; the run API's last output (log level ${o.logLevel}):\n${api || "(none)"}`;
    },
    stop,
  };
}

/**
 * Whether any run of the work task is not yet terminal: one `limit=1` list per
 * open state, in the order a run moves through them, so a run moving on
 * between two calls is still seen. Counting COMPLETED runs instead would load
 * the API being measured.
 */
async function anyOpen(client: OffloadClient): Promise<boolean> {
  for (const state of ["SCHEDULED", "PENDING", "RUNNING", "AWAITING_RETRY"] as const) {
    if ((await client.listRuns({ task: WORK_TASK, state, limit: 1 })).runs.length > 0) return true;
  }
  return false;
}

/**
 * The times of the COMPLETED runs among `ids`: pages through the work task's
 * COMPLETED runs, newest first, until all are found (they are the newest) or
 * the pages end. `completedAt` is the run's `updatedAt`: when the run API
 * recorded the outcome, which is when `result()` can answer.
 */
async function readCompleted(client: OffloadClient, ids: readonly string[]): Promise<Map<string, RunTimes>> {
  const wanted = new Set(ids);
  const done = new Map<string, RunTimes>();
  const times = (r: Run): RunTimes => ({
    startedAt: Date.parse(r.startedAt ?? ""),
    completedAt: Date.parse(r.updatedAt),
    workerFinishedAt: Date.parse(r.finishedAt ?? ""),
  });
  let cursor: string | undefined;
  do {
    const page = await client.listRuns({ task: WORK_TASK, state: "COMPLETED", limit: 500, ...(cursor ? { cursor } : {}) });
    for (const r of page.runs) if (wanted.has(r.id)) done.set(r.id, times(r));
    cursor = page.nextCursor ?? undefined;
  } while (cursor && done.size < wanted.size);
  return done;
}
