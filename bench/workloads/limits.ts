import pg from "pg";
import { waitFor, type Stack } from "../../test/support/index.js";
import { nowMs } from "../clock.js";

/** One lane of the limits bench: `runs` runs of `task` over `keys` keys, submitted in batches, followed until done. */
export interface LimitsLane {
  task: string;
  runs: number;
  keys: number;
  /** The task's concurrency limit per key, or null for none. */
  limitPerKey: number | null;
  /** From the first submit call until the last batch was accepted. */
  submitMs: number;
  /** From the first run recorded until the last one finished (the run API's clock). */
  completedMs: number;
  completedPerSec: number;
  /** Runs of one key running at once at most, from the records' startedAt/finishedAt: at most the limit when it holds. */
  maxPerKey: number;
  /** Median and 90th percentile of created → started, ms. */
  startP50: number;
  startP90: number;
}

const BATCH = 1000;

/** What one lane runs: `runs` runs of `task` over `keys` keys, each body `ms` ms. */
export interface LaneOptions {
  task: string;
  runs: number;
  keys: number;
  ms: number;
  limitPerKey: number | null;
  timeoutMs: number;
}

/**
 * Submits the lane's runs (key `k<i % keys>`) in batches of 1000 through
 * `POST /v1/runs/batch`, all at once, and waits until every one is
 * COMPLETED; answers how long submitting took.
 */
async function runLane(stack: Stack, db: pg.Client, o: LaneOptions): Promise<number> {
  const bodies = Array.from({ length: o.runs }, (_, i) => {
    const key = `k${i % o.keys}`;
    return { task: o.task, parameters: { key, ms: o.ms }, ...(o.limitPerKey !== null ? { concurrencyKey: key } : {}) };
  });
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: Math.ceil(o.runs / BATCH) }, async (_, b) => {
      const res = await fetch(`${stack.apiUrl}/v1/runs/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ runs: bodies.slice(b * BATCH, (b + 1) * BATCH) }),
      });
      if (res.status !== 202) throw new Error(`batch ${b} answered ${res.status}: ${await res.text()}`);
    }),
  );
  const submitMs = nowMs() - t0;
  await waitFor(
    `${o.runs} runs of ${o.task} to complete`,
    async () => {
      const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE task = $1 AND state = 'COMPLETED'", [o.task]);
      return Number(rows[0]!.n) >= o.runs ? true : undefined;
    },
    o.timeoutMs,
    200,
  );
  return submitMs;
}

/** Runs a lane unmeasured (JIT, connections, consumers warm up) and removes its runs. */
export async function warmUp(stack: Stack, o: LaneOptions): Promise<void> {
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    await runLane(stack, db, o);
    await db.query("DELETE FROM runs WHERE task = $1", [o.task]);
  } finally {
    await db.end();
  }
}

/** Runs a lane, then reads its records: throughput, most runs of one key at once, and the wait before a start. */
export async function measureLimits(stack: Stack, o: LaneOptions): Promise<LimitsLane> {
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    const submitMs = await runLane(stack, db, o);
    const { rows } = await db.query<{ key: string; created: string; started: string; finished: string }>(
      `SELECT parameters->>'key' AS key, (extract(epoch FROM created_at) * 1000)::text AS created,
              (extract(epoch FROM started_at) * 1000)::text AS started, (extract(epoch FROM finished_at) * 1000)::text AS finished
       FROM runs WHERE task = $1`,
      [o.task],
    );
    const runs = rows.map((r) => ({ key: r.key, created: Number(r.created), started: Number(r.started), finished: Number(r.finished) }));
    const first = Math.min(...runs.map((r) => r.created));
    const last = Math.max(...runs.map((r) => r.finished));
    const waits = runs.map((r) => r.started - r.created).sort((a, b) => a - b);
    const byKey = new Map<string, (typeof runs)[number][]>();
    for (const r of runs) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
    return {
      task: o.task,
      runs: o.runs,
      keys: o.keys,
      limitPerKey: o.limitPerKey,
      submitMs,
      completedMs: last - first,
      completedPerSec: (o.runs * 1000) / (last - first),
      maxPerKey: Math.max(...[...byKey.values()].map(maxOverlap)),
      startP50: waits[Math.floor(waits.length * 0.5)]!,
      startP90: waits[Math.floor(waits.length * 0.9)]!,
    };
  } finally {
    await db.end();
  }
}

/** The most runs whose [started, finished] overlap at one instant (an end before a start at the same ms). */
function maxOverlap(runs: readonly { started: number; finished: number }[]): number {
  const edges = runs.flatMap((r) => [[r.started, 1] as const, [r.finished, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}
