import { randomUUID } from "node:crypto";
import { Nats, type RunEvent } from "@offload/sdk/internal";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, startPostgres, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";
import { call, NatsProbe, startApiProcess, tempDir, type ApiProcess } from "./helpers.js";

// The API writes events in batches, one transaction each. These tests publish bursts, so that a run's
// events land in one batch or straddle two, and check the records end as if applied one at a time.

type Step = Partial<RunEvent> & Pick<RunEvent, "type" | "attempt">;
interface Pattern {
  name: string;
  steps: Step[];
  expected: Record<string, unknown>;
}

const FUTURE = new Date(Date.now() + 3_600_000).toISOString();
const err = (message: string): RunEvent["error"] => ({ type: "Error", message });

/** Each pattern's events in stream order, and the record it must end with. */
const PATTERNS: Pattern[] = [
  {
    name: "plain",
    steps: [{ type: "RUNNING", attempt: 1 }, { type: "COMPLETED", attempt: 1, result: { ok: 1 } }],
    expected: { state: "COMPLETED", attempts: 1, result: { ok: 1 }, error: null, workerId: "w1" },
  },
  {
    name: "everything twice",
    steps: [
      { type: "RUNNING", attempt: 1 },
      { type: "RUNNING", attempt: 1, workerId: "dup" },
      { type: "COMPLETED", attempt: 1, result: "first" },
      { type: "COMPLETED", attempt: 1, result: "second", workerId: "dup" },
    ],
    expected: { state: "COMPLETED", attempts: 1, result: "first", workerId: "w1" },
  },
  {
    name: "retried until failed",
    steps: [
      { type: "RUNNING", attempt: 1 },
      { type: "AWAITING_RETRY", attempt: 1, error: err("one") },
      { type: "RUNNING", attempt: 2 },
      { type: "AWAITING_RETRY", attempt: 2, error: err("two") },
      { type: "RUNNING", attempt: 3, workerId: "w3" },
      { type: "FAILED", attempt: 3, error: err("three"), workerId: "w3" },
    ],
    expected: { state: "FAILED", attempts: 3, error: err("three"), result: null, workerId: "w3" },
  },
  {
    name: "stragglers after completion",
    steps: [
      { type: "RUNNING", attempt: 1 },
      { type: "AWAITING_RETRY", attempt: 1, error: err("flaky") },
      { type: "RUNNING", attempt: 2, workerId: "w2" },
      { type: "COMPLETED", attempt: 2, result: 2, workerId: "w2" },
      { type: "RUNNING", attempt: 1, workerId: "late" },
      { type: "AWAITING_RETRY", attempt: 1, error: err("late"), workerId: "late" },
      { type: "FAILED", attempt: 1, error: err("late"), workerId: "late" },
    ],
    expected: { state: "COMPLETED", attempts: 2, result: 2, error: null, workerId: "w2" },
  },
  {
    name: "completion before its start",
    steps: [{ type: "COMPLETED", attempt: 1, result: null }, { type: "RUNNING", attempt: 1, workerId: "late" }],
    expected: { state: "COMPLETED", attempts: 1, result: null, startedAt: null, workerId: "w1" },
  },
  {
    name: "duplicated start while a retry waits",
    steps: [
      { type: "RUNNING", attempt: 1 },
      { type: "AWAITING_RETRY", attempt: 1, error: err("later"), retryAt: FUTURE },
      { type: "RUNNING", attempt: 1, workerId: "dup" },
    ],
    expected: { state: "AWAITING_RETRY", attempts: 1, error: err("later"), scheduledAt: FUTURE, workerId: "w1" },
  },
  {
    name: "cancelled, then a late completion",
    steps: [{ type: "RUNNING", attempt: 1 }, { type: "CANCELLED", attempt: 1 }, { type: "COMPLETED", attempt: 1, result: "late", workerId: "late" }],
    expected: { state: "CANCELLED", attempts: 1, result: null, workerId: "w1" },
  },
  {
    name: "failed, then a newer start",
    steps: [{ type: "FAILED", attempt: 1, error: err("final") }, { type: "RUNNING", attempt: 2, workerId: "late" }],
    expected: { state: "FAILED", attempts: 1, error: err("final"), workerId: "w1" },
  },
  {
    name: "a newer attempt overtakes, an older one completes",
    steps: [{ type: "RUNNING", attempt: 1 }, { type: "RUNNING", attempt: 3, workerId: "w3" }, { type: "COMPLETED", attempt: 2, result: "two", workerId: "w2" }],
    expected: { state: "COMPLETED", attempts: 3, result: "two", workerId: "w2" },
  },
];

/** A seeded shuffle of the runs' event lists into one stream that keeps each run's own order. */
function interleave<T>(lists: T[][], seed: number): T[] {
  let s = seed;
  const random = (): number => ((s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const queues = lists.map((l) => [...l]).filter((l) => l.length > 0);
  const out: T[] = [];
  while (queues.length > 0) {
    const i = Math.floor(random() * queues.length);
    out.push(queues[i]!.shift()!);
    if (queues[i]!.length === 0) queues.splice(i, 1);
  }
  return out;
}

const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

async function createRuns(base: string, task: string, n: number): Promise<string[]> {
  const res = await call(base, "POST", "/v1/runs/batch", { runs: Array.from({ length: n }, () => ({ task })) });
  expect(res.status).toBe(202);
  return res.body.runs.map((r: { id: string }) => r.id);
}

/** Publishes the events as workers' batch messages of `size` entries (`RunEventBatch`), in this order. */
async function publishBatches(probe: NatsProbe, task: string, entries: unknown[], size: number): Promise<void> {
  const messages = Array.from({ length: Math.ceil(entries.length / size) }, (_, k) => entries.slice(k * size, (k + 1) * size));
  await Promise.all(messages.map((events) => probe.js.publish(Nats.eventSubject(task), JSON.stringify({ events }))));
}

/** Publishes the events in this order, without waiting for one before sending the next (one connection keeps the order). */
async function publishBurst(probe: NatsProbe, events: RunEvent[]): Promise<void> {
  await Promise.all(events.map((e) => probe.js.publish(Nats.eventSubject(e.task), JSON.stringify(e))));
}

describe.each(["postgres", "pglite"] as const)("event materialization on %s", (kind) => {
  let nats: NatsServer;
  let postgres: PostgresServer | undefined;
  let dir: { path: string; remove(): Promise<void> } | undefined;
  let databaseUrl: string | undefined;
  let api: ApiProcess;
  let probe: NatsProbe;

  beforeAll(async () => {
    nats = await startNats();
    let env: Record<string, string>;
    if (kind === "postgres") {
      postgres = await startPostgres();
      databaseUrl = await postgres.createDatabase(`events_${randomUUID().slice(0, 8)}`);
      env = { OFFLOAD_DATABASE_URL: databaseUrl };
    } else {
      dir = await tempDir("offload-api-events-");
      env = { OFFLOAD_DATA_DIR: dir.path };
    }
    api = await startApiProcess(`offload-api-events-${kind}`, { OFFLOAD_NATS_URL: nats.url, ...env });
    probe = await NatsProbe.connect(nats.url);
  });

  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    const code = await api?.stop();
    await Promise.all([nats?.stop(), postgres?.stop(), dir?.remove()]);
    expect(code).toBe(0);
  });

  it("ends every run of a burst with duplicated and late events as if applied one at a time", async () => {
    const task = taskName("burst");
    const perPattern = 20;
    const ids = await createRuns(api.url, task, PATTERNS.length * perPattern);
    const at = new Date().toISOString();
    const runs = ids.map((id, i) => ({ id, pattern: PATTERNS[i % PATTERNS.length]! }));
    const lists = runs.map(({ id, pattern }) => pattern.steps.map((s): RunEvent => ({ runId: id, task, workerId: "w1", at, ...s })));
    const events = interleave(lists, 42);
    expect(events.length).toBeGreaterThan(500); // more than one batch's worth

    await publishBurst(probe, events);
    await probe.eventsSettled();

    for (const { id, pattern } of runs) {
      const got = await call(api.url, "GET", `/v1/runs/${id}`);
      expect({ pattern: pattern.name, ...got.body }).toMatchObject({ pattern: pattern.name, ...pattern.expected });
      if (pattern.expected.state === "COMPLETED" || pattern.expected.state === "FAILED" || pattern.expected.state === "CANCELLED") {
        expect(got.body.finishedAt).toBe(at);
      }
    }
  });

  it("applies workers' batch messages, of several runs and types, each run's events in order", async () => {
    const task = taskName("batches");
    const perPattern = 6;
    const ids = await createRuns(api.url, task, PATTERNS.length * perPattern);
    const at = new Date().toISOString();
    const runs = ids.map((id, i) => ({ id, pattern: PATTERNS[i % PATTERNS.length]! }));
    const lists = runs.map(({ id, pattern }) => pattern.steps.map((s): RunEvent => ({ runId: id, task, workerId: "w1", at, ...s })));
    // Messages of 50 entries: most runs' events span several messages, and each message holds runs of every pattern.
    await publishBatches(probe, task, interleave(lists, 3), 50);
    await probe.eventsSettled();

    for (const { id, pattern } of runs) {
      const got = await call(api.url, "GET", `/v1/runs/${id}`);
      expect({ pattern: pattern.name, ...got.body }).toMatchObject({ pattern: pattern.name, ...pattern.expected });
    }
  });

  it("applies the well-formed entries of a batch with malformed ones, and acks it; terminates one with none", async () => {
    const task = taskName("malformed");
    const [a, b] = await createRuns(api.url, task, 2);
    const event = (runId: string, type: RunEvent["type"]): RunEvent => ({ runId, task, type, attempt: 1, workerId: "w1", at: new Date().toISOString() });
    const before = await probe.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer);
    await publishBatches(
      probe,
      task,
      [event(a!, "RUNNING"), { ...event(b!, "RUNNING"), type: "SLEEPING" }, "not an event", { ...event(a!, "COMPLETED"), runId: "not-a-uuid" }, event(b!, "COMPLETED"), event(a!, "COMPLETED")],
      10,
    );
    await publishBatches(probe, task, [{ nonsense: true }], 10);
    await probe.eventsSettled();

    expect((await call(api.url, "GET", `/v1/runs/${a}`)).body).toMatchObject({ state: "COMPLETED", attempts: 1 });
    // Its RUNNING was the malformed entry: the outcome alone still ends the run.
    expect((await call(api.url, "GET", `/v1/runs/${b}`)).body).toMatchObject({ state: "COMPLETED", attempts: 1, startedAt: null });
    // Acked (or terminated) at once, never naked for a redelivery.
    const after = await probe.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer);
    expect(after.num_redelivered).toBe(before.num_redelivered);
  });

  // Only PostgreSQL has other transactions to hold rows: PGlite is one connection.
  const onPostgres = kind === "postgres" ? it : undefined;
  onPostgres?.("applies the events of runs another transaction holds once it lets go, in their order", async () => {
    const task = taskName("held");
    const ids = await createRuns(api.url, task, 40);
    const held = ids.slice(0, 10);
    const at = new Date().toISOString();
    const event = (runId: string, type: RunEvent["type"]): RunEvent => ({ runId, task, type, attempt: 1, workerId: "w1", at, ...(type === "COMPLETED" ? { result: "done" } : {}) });
    // Which of CANCELLED and COMPLETED comes first decides the outcome, so order matters here.
    const lists = ids.map((id, i) => (i % 2 ? ["RUNNING", "CANCELLED", "COMPLETED"] : ["RUNNING", "COMPLETED", "CANCELLED"]).map((t) => event(id, t as RunEvent["type"])));
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT id FROM runs WHERE id = ANY($1::uuid[]) FOR UPDATE", [held]);
      await publishBurst(probe, interleave(lists, 7));
      // Hold them a while: the API retries them with later batches, then waits for them alone.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await client.query("COMMIT");
    } finally {
      await client.end();
    }
    await probe.eventsSettled();
    for (const [i, id] of ids.entries()) {
      expect((await call(api.url, "GET", `/v1/runs/${id}`)).body).toMatchObject({ state: i % 2 ? "CANCELLED" : "COMPLETED", attempts: 1 });
    }
  });

  it("retries a batch the database refuses event by event: only the refused event comes back", async () => {
    const task = taskName("poison");
    const [poisoned, ...ids] = await createRuns(api.url, task, 41);
    const at = new Date().toISOString();
    const event = (runId: string, type: RunEvent["type"], extra: Partial<RunEvent> = {}): RunEvent => ({ runId, task, type, attempt: 1, workerId: "w1", at, ...extra });
    // timestamptz has no year 0: this completion fails in SQL every time, whichever batch it is in. (A result holding
    // U+0000 no longer does: the materializer fails such a run with ResultNotStorable before the database sees it.)
    const events = [
      ...ids.slice(0, 20).flatMap((id) => [event(id, "RUNNING"), event(id, "COMPLETED", { result: id })]),
      event(poisoned!, "RUNNING"),
      event(poisoned!, "COMPLETED", { result: "done", at: "0000-01-01T00:00:00Z" }),
      ...ids.slice(20).flatMap((id) => [event(id, "RUNNING"), event(id, "COMPLETED", { result: id })]),
    ];
    await publishBurst(probe, events);

    for (const id of ids) {
      const run = await waitFor(`run ${id} to complete`, async () => {
        const r = (await call(api.url, "GET", `/v1/runs/${id}`)).body;
        return r.state === "COMPLETED" ? r : undefined;
      });
      expect(run).toMatchObject({ attempts: 1, result: id, workerId: "w1" });
    }
    // The refused event is naked, not acked (nor terminated): it comes back, and is refused again.
    await waitFor("the refused event to be redelivered", async () => {
      const info = await probe.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer);
      return info.num_pending === 0 && info.num_ack_pending === 1 && info.num_redelivered >= 1;
    });
    expect((await call(api.url, "GET", `/v1/runs/${poisoned}`)).body).toMatchObject({ state: "RUNNING", attempts: 1 });
  });

  it("naks a batch message one of whose entries the database refuses, having applied the others", async () => {
    const task = taskName("poison-batch");
    const [poisoned, ...ids] = await createRuns(api.url, task, 5);
    const event = (runId: string, type: RunEvent["type"], extra: Partial<RunEvent> = {}): RunEvent => ({ runId, task, type, attempt: 1, workerId: "w1", at: new Date().toISOString(), ...extra });
    const pendingBefore = (await probe.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer)).num_ack_pending;
    const entries = [
      ...ids.map((id) => event(id, "RUNNING")),
      event(poisoned!, "COMPLETED", { result: "done", at: "0000-01-01T00:00:00Z" }),
      ...ids.map((id) => event(id, "COMPLETED", { result: id })),
    ];
    await publishBatches(probe, task, entries, entries.length);

    for (const id of ids) {
      const run = await waitFor(`run ${id} to complete`, async () => {
        const r = (await call(api.url, "GET", `/v1/runs/${id}`)).body;
        return r.state === "COMPLETED" ? r : undefined;
      });
      expect(run).toMatchObject({ attempts: 1, result: id });
    }
    // The message comes back (its redelivery changes nothing for the runs already recorded) and is refused again.
    await waitFor("the batch to be redelivered", async () => {
      const info = await probe.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer);
      return info.num_pending === 0 && info.num_ack_pending === pendingBefore + 1 && info.num_redelivered >= 2;
    });
    expect((await call(api.url, "GET", `/v1/runs/${poisoned}`)).body).toMatchObject({ state: "PENDING" });
  });
});
