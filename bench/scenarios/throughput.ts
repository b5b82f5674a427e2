import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { OffloadClient, Run } from "@offload/sdk";
import type { BenchTasks } from "../tasks.js";
import { perSecond, round, summarize, type Summary } from "../stats.js";

/** `runs` runs of `add` in one `map()`, until every one is COMPLETED, with `workers` worker processes. */
export interface ThroughputResult {
  workers: number;
  /** 1-based: which of the `--repeat` measurements with this worker count. */
  repeat: number;
  concurrency: number;
  runs: number;
  /** The one `map()` call (POST /v1/runs/batch). */
  submitMs: number;
  /**
   * From before `map()` until a poll of `GET /v1/runs?task=add&state=…` found no
   * run left open (then confirmed all COMPLETED): what an app sees, late by up to
   * one poll interval.
   */
  completedMs: number;
  /** runs / completedMs: the headline number. */
  runsPerSec: number;
  /**
   * From before `map()` to the latest `finishedAt` of the runs: the time the
   * workers stamped on their last "finished" event (same host clock). The
   * difference to `completedMs` is the API materializing events (plus the poll).
   */
  workerDoneMs: number;
  /** runs / workerDoneMs. */
  workerRunsPerSec: number;
  polls: number;
  /** Mean time of one poll (four `limit=1` lists), ms: the bench's own load on the API. */
  pollMeanMs: number;
  /** startedAt − createdAt of each run: time spent queued. */
  queueWaitMs: Summary;
  /** finishedAt − startedAt of each run: time in the worker. */
  execMs: Summary;
  /** Runs each worker process did (by workerId). */
  byWorker: number[];
}

export async function measureThroughput(
  client: OffloadClient,
  tasks: BenchTasks,
  o: { runs: number; workers: number; repeat: number; concurrency: number; pollMs: number; timeoutSeconds: number },
): Promise<ThroughputResult> {
  const inputs = Array.from({ length: o.runs }, (_, i) => ({ a: i, b: 1 }));
  const t0Wall = Date.now();
  const t0 = performance.now();
  const handles = await tasks.add.map(inputs);
  const submitMs = performance.now() - t0;
  const ids = new Set(handles.map((h) => h.id));
  const done = new Map<string, Run>();
  const deadline = t0 + o.timeoutSeconds * 1000;
  let polls = 0;
  let pollingMs = 0;
  let completedMs: number | undefined;
  for (;;) {
    polls++;
    const p = performance.now();
    const open = await anyOpen(client);
    pollingMs += performance.now() - p;
    if (!open) {
      // Every run of `add` is terminal: time it now, then read the records (unmeasured).
      completedMs = performance.now() - t0;
      await collectCompleted(client, ids, t0Wall - 2000, done);
      if (done.size >= ids.size) break;
      await failIfAnyFailed(client, ids);
      completedMs = undefined; // a run moved back (a retry) between two probes: go on
    }
    if (performance.now() > deadline) {
      await collectCompleted(client, ids, t0Wall - 2000, done);
      throw new Error(`throughput: only ${done.size} of ${ids.size} runs COMPLETED after ${o.timeoutSeconds} s (raise --timeout?)`);
    }
    await sleep(o.pollMs);
  }
  const runs = [...done.values()];
  const ms = (iso: string | null): number => (iso ? Date.parse(iso) : Number.NaN);
  const lastFinished = Math.max(...runs.map((r) => ms(r.finishedAt)));
  const workerDoneMs = lastFinished - t0Wall;
  const byWorker = new Map<string, number>();
  for (const r of runs) byWorker.set(r.workerId ?? "?", (byWorker.get(r.workerId ?? "?") ?? 0) + 1);
  return {
    workers: o.workers,
    repeat: o.repeat,
    concurrency: o.concurrency,
    runs: o.runs,
    submitMs: round(submitMs),
    completedMs: round(completedMs ?? Number.NaN),
    runsPerSec: perSecond(o.runs, completedMs ?? Number.NaN),
    workerDoneMs: round(workerDoneMs),
    workerRunsPerSec: perSecond(o.runs, workerDoneMs),
    polls,
    pollMeanMs: round(pollingMs / polls),
    queueWaitMs: summarize(runs.map((r) => ms(r.startedAt) - ms(r.createdAt))),
    execMs: summarize(runs.map((r) => ms(r.finishedAt) - ms(r.startedAt))),
    byWorker: [...byWorker.values()].sort((a, b) => b - a),
  };
}

/**
 * Whether any run of `add` is not yet terminal: one `limit=1` list per open
 * state, in the order a run moves through them, so that a run moving on
 * between two calls is still seen. Cheap, unlike counting COMPLETED runs
 * (pages of 500), which would load the API it measures. Earlier runs of `add`
 * are all terminal, so an open one is this batch's.
 */
async function anyOpen(client: OffloadClient): Promise<boolean> {
  for (const state of ["SCHEDULED", "PENDING", "RUNNING", "AWAITING_RETRY"] as const) {
    if ((await client.listRuns({ task: "add", state, limit: 1 })).runs.length > 0) return true;
  }
  return false;
}

/**
 * Pages through the COMPLETED runs of `add`, newest first, adding those in
 * `ids` to `done`; stops at the first page that reaches runs created before
 * `sinceMs` (older runs are not this batch's).
 */
async function collectCompleted(client: OffloadClient, ids: ReadonlySet<string>, sinceMs: number, done: Map<string, Run>): Promise<void> {
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const res = await client.listRuns({ task: "add", state: "COMPLETED", limit: 500, ...(cursor ? { cursor } : {}) });
    let reachedOlder = false;
    for (const r of res.runs) {
      if (ids.has(r.id)) done.set(r.id, r);
      else if (Date.parse(r.createdAt) < sinceMs) reachedOlder = true;
    }
    if (reachedOlder || !res.nextCursor) return;
    cursor = res.nextCursor;
  }
}

async function failIfAnyFailed(client: OffloadClient, ids: ReadonlySet<string>): Promise<void> {
  for (const state of ["FAILED", "CANCELLED"] as const) {
    const res = await client.listRuns({ task: "add", state, limit: 20 });
    const bad = res.runs.find((r) => ids.has(r.id));
    if (bad) throw new Error(`throughput: run ${bad.id} ended ${state}: ${JSON.stringify(bad.error)}`);
  }
}
