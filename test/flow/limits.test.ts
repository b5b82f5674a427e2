// Concurrency and rate limits, priority and fairness, end to end: two run API
// replicas on one PostgreSQL and one nats-server, three real worker processes
// serving tasks that declare their limits with the SDK (fixtures/limited.mjs),
// which the workers register. Overlap and start rates are measured from the
// workers' own clocks: each run appends {task, key, runId, start, end} to a file.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RunSchema, type Run } from "@offload/sdk/internal";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, readSse, startApiProcess, type ApiProcess } from "../api/helpers.js";
import { startStack, stopSharedPostgres, waitFor, type Stack } from "../support/index.js";

const FIXTURE = join(import.meta.dirname, "fixtures/limited.mjs");
/** Short, so that a SIGKILLed worker's runs are redelivered within the test. */
const ACK_WAIT_SECONDS = 3;
/** A worker's Date.now() is in whole ms, PostgreSQL's clock_timestamp() in µs: the same instant may read 1 ms apart. */
const CLOCK_SLACK_MS = 2;

interface Line {
  task: string;
  key: string;
  runId: string;
  pid: number;
  start: number;
  end: number;
}

/** The most runs of one key whose [start, end] overlap at any instant (an end before a start at the same ms). */
function maxOverlap(lines: readonly Line[]): number {
  const edges = lines.flatMap((l) => [[l.start, 1] as const, [l.end, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

describe("flow control across two run API replicas and three workers", () => {
  let stack: Stack;
  let api2: ApiProcess | undefined;
  let logFile: string;
  const apis = (): string[] => [stack.apiUrl, api2!.url];
  const workerEnv = (): Record<string, string> => ({ OFFLOAD_FLOW_LOG: logFile, OFFLOAD_ACK_WAIT_SECONDS: String(ACK_WAIT_SECONDS) });
  const lines = (task: string): Line[] =>
    existsSync(logFile)
      ? readFileSync(logFile, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Line)
          .filter((l) => l.task === task)
      : [];
  const batch = async (api: string, runs: object[]): Promise<Run[]> => {
    const res = await call(api, "POST", "/v1/runs/batch", { runs });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return (res.body.runs as unknown[]).map((r) => RunSchema.parse(r));
  };
  const getRun = async (api: string, id: string): Promise<Run> => RunSchema.parse((await call(api, "GET", `/v1/runs/${id}`)).body);

  beforeAll(async () => {
    // The safety-net pass every 200 ms: a slot freed by an outcome the other replica recorded is seen within it.
    stack = await startStack({ apiEnv: { OFFLOAD_ADMISSION_INTERVAL_MS: "200" } });
    try {
      logFile = join(stack.dir, "flow.jsonl");
      // All at once: each start costs seconds on a busy machine.
      const [second] = await Promise.all([
        startApiProcess("offload-api#2", { OFFLOAD_NATS_URL: stack.nats.url, OFFLOAD_DATABASE_URL: stack.databaseUrl, OFFLOAD_ADMISSION_INTERVAL_MS: "200" }),
        ...Array.from({ length: 3 }, () => stack.startWorker({ module: FIXTURE, concurrency: 8, env: workerEnv() })),
      ]);
      api2 = second as ApiProcess;
      // Both replicas know the limits (registration reaches each over NATS) before anything is submitted.
      for (const api of apis()) {
        await waitFor(`${api} to know the registered limits`, async () => {
          const tasks = (await call(api, "GET", "/v1/tasks")).body.tasks as { name: string; definition?: { concurrency?: unknown } }[];
          return tasks.find((t) => t.name === "flow-tenant")?.definition?.concurrency ? true : undefined;
        });
      }
    } catch (err) {
      await api2?.stop();
      await stack.stop();
      throw err;
    }
  }, 120_000);

  afterAll(async () => {
    await api2?.stop();
    await stack?.stop();
    await stopSharedPostgres();
  });

  /** Submits `perTenant` runs for each of `tenants`, alternating replicas; answers the runs. */
  const spread = async (tenants: string[], perTenant: number, ms: number): Promise<Run[]> => {
    const bodies = tenants.flatMap((tenant) => Array.from({ length: perTenant }, () => ({ task: "flow-tenant", parameters: { tenant, ms }, concurrencyKey: tenant })));
    const half = Math.ceil(bodies.length / 2);
    const [a, b] = await Promise.all([batch(apis()[0]!, bodies.slice(0, half)), batch(apis()[1]!, bodies.slice(half))]);
    return [...a, ...b];
  };
  /** Waits until every run finished (asking both replicas, and only about runs not yet seen finished); answers them. */
  const allFinished = async (runs: Run[]): Promise<Run[]> => {
    const done = new Map<string, Run>();
    await waitFor(
      `${runs.length} runs to finish`,
      async () => {
        const open = runs.filter((r) => !done.has(r.id)).slice(0, 50);
        for (const r of await Promise.all(open.map((r, i) => getRun(apis()[i % 2]!, r.id)))) {
          if (["COMPLETED", "FAILED", "CANCELLED"].includes(r.state)) done.set(r.id, r);
        }
        return done.size === runs.length ? true : undefined;
      },
      60_000,
      250,
    );
    return runs.map((r) => done.get(r.id)!);
  };
  const overlapByTenant = (tenants: string[]): Record<string, number> =>
    Object.fromEntries(tenants.map((t) => [t, maxOverlap(lines("flow-tenant").filter((l) => l.key === t))]));

  it("runs 200 runs over 10 tenants at most 2 at a time per tenant, and all complete", async () => {
    const tenants = Array.from({ length: 10 }, (_, i) => `calm-${i}`);
    const runs = await spread(tenants, 20, 20);
    const finished = await allFinished(runs);
    expect(finished.filter((r) => r.state !== "COMPLETED")).toEqual([]);
    const overlap = overlapByTenant(tenants);
    expect(Object.values(overlap).every((n) => n <= 2), JSON.stringify(overlap)).toBe(true);
    // The limit was reached (the test would pass trivially if runs went one by one).
    expect(Math.max(...Object.values(overlap))).toBe(2);
    const metrics = await Promise.all(apis().map(async (api) => (await call(api, "GET", "/metrics")).body as string));
    const admitted = metrics.map((m) => Number(/offload_runs_admitted_total\{task="flow-tenant"\} (\d+)/.exec(m)?.[1] ?? 0));
    expect(admitted[0]! + admitted[1]!).toBeGreaterThanOrEqual(200);
  });

  it("keeps the limit while workers are SIGKILLed mid-way, and leaks no slot: one more run per tenant starts at once", async () => {
    const tenants = Array.from({ length: 10 }, (_, i) => `rough-${i}`);
    const runs = await spread(tenants, 20, 100);
    await waitFor("a quarter of the runs to end", async () => (lines("flow-tenant").filter((l) => l.key.startsWith("rough-")).length >= 50 ? true : undefined));
    // Two of the three die with runs in hand; a fresh one takes their place. Their runs stay RUNNING (they may
    // still be running, for all the run API knows) until JetStream redelivers them after the ack wait.
    stack.workers[0]!.child.proc.kill("SIGKILL");
    stack.workers[1]!.child.proc.kill("SIGKILL");
    await stack.startWorker({ module: FIXTURE, concurrency: 8, env: workerEnv() });
    const finished = await allFinished(runs);
    expect(finished.filter((r) => r.state === "COMPLETED").length).toBeGreaterThan(150);
    const overlap = overlapByTenant(tenants);
    expect(Object.values(overlap).every((n) => n <= 2), JSON.stringify(overlap)).toBe(true);

    // Every slot was given back by the outcomes: a new run per tenant starts at once, well before any ack wait.
    const last = await spread(tenants, 1, 0);
    const started = await allFinished(last);
    expect(started.filter((r) => r.state !== "COMPLETED")).toEqual([]);
    // The start as the worker saw it: with two replicas sharing the events consumer, a quick run's COMPLETED may be
    // recorded before its RUNNING, which then changes nothing, so the record can lack startedAt.
    const startOf = new Map(lines("flow-tenant").map((l) => [l.runId, l.start]));
    const waits = started.map((r) => startOf.get(r.id)! - Date.parse(r.createdAt));
    expect(Math.max(...waits), JSON.stringify(waits)).toBeLessThan(ACK_WAIT_SECONDS * 1000);
  });

  it("starts a priority-1 run before a backlog of priority-5 runs, and shows why held runs wait", async () => {
    const [api1] = apis();
    const seen: Run[] = [];
    const streamDone = new AbortController();
    const allStream = readSse(`${api1}/v1/events?task=flow-single`, (e) => void (e.event === "run" && seen.push(JSON.parse(e.data) as Run)), streamDone.signal).catch(() => undefined);
    try {
      // One blocker takes the only slot; the backlog and the urgent run queue behind it.
      const [blocker] = await batch(api1!, [{ task: "flow-single", parameters: { tenant: "blocker", ms: 1500 } }]);
      await waitFor("the blocker to start", async () => ((await getRun(api1!, blocker!.id)).state === "RUNNING" ? true : undefined));
      const backlog = await batch(api1!, Array.from({ length: 10 }, () => ({ task: "flow-single", parameters: { tenant: "backlog", ms: 10 }, priority: 5 })));
      const [urgent] = await batch(api1!, [{ task: "flow-single", parameters: { tenant: "urgent", ms: 10 }, priority: 1 }]);
      // A held run cancelled is simply CANCELLED: no worker ever sees it.
      const [dropped] = await batch(api1!, [{ task: "flow-single", parameters: { tenant: "dropped", ms: 10 }, priority: 1 }]);
      const cancelled = await call(apis()[1]!, "POST", `/v1/runs/${dropped!.id}/cancel`);
      expect(cancelled).toMatchObject({ status: 200, body: { state: "CANCELLED", waitingFor: null } });

      // Why it waits: in the record, through GET /v1/runs/:id, and on the run's event stream.
      const reason = { kind: "concurrency", key: null, limit: 1, running: 1 };
      const held = await waitFor("the urgent run to say why it waits", async () => {
        const run = await getRun(apis()[1]!, urgent!.id);
        return run.waitingFor ? run : undefined;
      });
      expect(held).toMatchObject({ state: "PENDING", priority: 1, waitingFor: reason });
      const states: Run[] = [];
      await readSse(`${api1}/v1/runs/${backlog[0]!.id}/events`, (e) => void (e.event === "state" && states.push(JSON.parse(e.data) as Run)));
      expect(states[0]).toMatchObject({ state: "PENDING", waitingFor: reason });
      expect(states.at(-1)!.state).toBe("COMPLETED");
      // Once dispatched it waits for nothing (PENDING in a worker's queue, then RUNNING).
      expect(states.slice(1).every((s) => s.waitingFor === null)).toBe(true);

      await allFinished([blocker!, ...backlog, urgent!]);
      const order = lines("flow-single").sort((a, b) => a.start - b.start).map((l) => l.key);
      expect(order.slice(0, 2)).toEqual(["blocker", "urgent"]);
      expect(order).not.toContain("dropped");
      expect(maxOverlap(lines("flow-single"))).toBe(1);
      // The replica that recorded the held runs told its event stream at once.
      expect(seen.some((r) => r.id === urgent!.id && r.state === "PENDING")).toBe(true);
    } finally {
      streamDone.abort();
      await allStream;
    }
  });

  it("dispatches at most 10 runs per sliding second under a rate limit of 10 per second, at that pace", async () => {
    const [api1, api2url] = apis();
    // 110: more than 10 s' worth, so that a 10 s span of starts can show too many.
    const bodies = Array.from({ length: 110 }, () => ({ task: "flow-rate", parameters: { tenant: "all", ms: 0 } }));
    const runs = [...(await batch(api1!, bodies.slice(0, 55))), ...(await batch(api2url!, bodies.slice(55)))];
    await allFinished(runs);
    // When the run API dispatched each run (both replicas, one clock: PostgreSQL's): the limit's own measure.
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    const rows = await db
      .query<{ id: string; ms: string }>("SELECT id, (extract(epoch FROM published_at) * 1000)::text AS ms FROM runs WHERE task = 'flow-rate' ORDER BY published_at")
      .then((r) => r.rows)
      .finally(() => db.end());
    const dispatched = rows.map((row) => Number(row.ms));
    const perSecond = (times: number[]): number => Math.max(...times.map((s, i) => times.slice(i).filter((t) => t < s + 1000).length));
    expect(dispatched).toHaveLength(110);
    expect(perSecond(dispatched), JSON.stringify(dispatched.map((t) => Math.round(t - dispatched[0]!)))).toBeLessThanOrEqual(10);
    // And the record is the pace the workers got: no run started before the pass that dispatched it (one clock: the
    // machine's; PostgreSQL reads it before publishing). The workers' own starts are not counted per second: a worker
    // busy elsewhere (another task's fetch holding its slots, a stalled process on a loaded machine) takes runs up
    // late, and late runs bunch, without any having been dispatched early.
    const dispatchedAt = new Map(rows.map((row) => [row.id, Number(row.ms)]));
    const starts = lines("flow-rate");
    expect(starts).toHaveLength(110);
    const early = starts.filter((l) => l.start < dispatchedAt.get(l.runId)! - CLOCK_SLACK_MS);
    expect(early, "runs started before they were dispatched").toEqual([]);
    // At 10 a second, the 101st cannot come before 10 windows have passed.
    expect(dispatched[100]! - dispatched[0]!).toBeGreaterThanOrEqual(10_000);
  });

  it("lets a tenant with 10 runs finish while another's 2,000 still wait", async () => {
    const [api1] = apis();
    const big = `big-${randomUUID().slice(0, 6)}`;
    const small = `small-${randomUUID().slice(0, 6)}`;
    const body = (tenant: string) => ({ task: "flow-tenant", parameters: { tenant, ms: 5 }, concurrencyKey: tenant });
    // One batch call, the big tenant's runs first: arrival order alone would put the small tenant last.
    const runs = await batch(api1!, [...Array.from({ length: 2000 }, () => body(big)), ...Array.from({ length: 10 }, () => body(small))]);
    const mine = runs.slice(2000);
    await allFinished(mine);
    const bigDone = lines("flow-tenant").filter((l) => l.key === big).length;
    expect(bigDone).toBeLessThan(1000);
    // Any of the big tenant's runs still held (runs of one batch share a creation time, so which of them went first is the database's order).
    const pending = await call(api1!, "GET", "/v1/runs?task=flow-tenant&state=PENDING&limit=100");
    const waiting = (pending.body.runs as Run[]).find((r) => r.concurrencyKey === big && r.waitingFor !== null);
    expect(waiting).toMatchObject({ state: "PENDING", waitingFor: { kind: "concurrency", key: big, limit: 2 } });
    const metrics = await Promise.all(apis().map(async (api) => (await call(api, "GET", "/metrics")).body as string));
    const held = metrics.map((m) => Number(/offload_runs_waiting\{task="flow-tenant",kind="concurrency"\} (\d+)/.exec(m)?.[1] ?? 0));
    expect(Math.max(...held)).toBeGreaterThan(1000);
  });
});
