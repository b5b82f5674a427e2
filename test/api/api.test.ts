import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorBodySchema, Nats, RunSchema, TaskMessageSchema, type Run } from "@offload/sdk/internal";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNats, startServers, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";
import { call, NatsProbe, startApiProcess, tempDir, type ApiProcess } from "./helpers.js";

// One task name per test: runs, subjects and list filters never overlap.
const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

describe("run API on PostgreSQL", () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  let api: ApiProcess;
  let probe: NatsProbe;
  const BODY_LIMIT = 64 * 1024;

  beforeAll(async () => {
    ({ nats, postgres } = await startServers());
    const db = await postgres.createDatabase(`api_${randomUUID().slice(0, 8)}`);
    // Two replicas starting at once: migrations and stream creation must not trip over each other.
    const env = {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_DATABASE_URL: db,
      OFFLOAD_REPUBLISH_AFTER_SECONDS: "1",
      OFFLOAD_API_BODY_LIMIT: String(BODY_LIMIT),
    };
    const [a, b] = await Promise.all([startApiProcess("offload-api-a", env), startApiProcess("offload-api-b", env)]);
    api = a;
    await b.stop();
    probe = await NatsProbe.connect(nats.url);
  });

  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    const code = await api?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
    // Graceful shutdown on SIGTERM exits 0.
    expect(code).toBe(0);
  });

  it("records a run, puts exactly one task message on its subject, nudges the task's workers, and answers 202 PENDING", async () => {
    const task = taskName("one");
    // Idle workers wake on an empty nudge, not on copies of the task messages.
    const nudges = probe.nc.subscribe(Nats.nudgeSubject(task), { max: 1, timeout: 10_000 });
    await probe.nc.flush();
    const res = await call(api.url, "POST", "/v1/runs", { task, parameters: { n: 1 } });
    expect(res.status).toBe(202);
    const run = RunSchema.parse(res.body);
    expect(run).toMatchObject({ task, state: "PENDING", parameters: { n: 1 }, attempts: 0 });
    expect(run.scheduledAt).toBe(run.createdAt);

    const msgs = await probe.takeTaskMessages(task, 1);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.subject).toBe(Nats.taskSubject(task));
    expect(msgs[0]!.headers?.get("Nats-Msg-Id")).toBe(Nats.dispatchMsgId(run.id, 0));
    expect(TaskMessageSchema.parse(msgs[0]!.json())).toEqual({ runId: run.id, task, parameters: { n: 1 }, attemptsBefore: 0, dispatch: 0 });
    for await (const nudge of nudges) expect(nudge.data).toHaveLength(0);
    expect(nudges.getProcessed()).toBe(1);

    const got = await call(api.url, "GET", `/v1/runs/${run.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(run);
  });

  it("moves a run through the events workers publish, and never backwards", async () => {
    const task = taskName("events");
    const run = (await call(api.url, "POST", "/v1/runs", { task, parameters: null })).body;
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1, workerId: "w1" });
    const running = await waitFor("RUNNING", async () => {
      const r = (await call(api.url, "GET", `/v1/runs/${run.id}`)).body;
      return r.state === "RUNNING" ? r : undefined;
    });
    expect(running).toMatchObject({ attempts: 1, workerId: "w1" });
    expect(running.startedAt).not.toBeNull();

    // A retry, then the second attempt completes.
    await probe.publishEvent({ runId: run.id, task, type: "AWAITING_RETRY", attempt: 1, workerId: "w1", error: { type: "Error", message: "flaky" } });
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 2, workerId: "w2" });
    await probe.publishEvent({ runId: run.id, task, type: "COMPLETED", attempt: 2, workerId: "w2", result: { ok: true } });
    await probe.eventsSettled();
    const done = (await call(api.url, "GET", `/v1/runs/${run.id}`)).body;
    expect(done).toMatchObject({ state: "COMPLETED", attempts: 2, workerId: "w2", result: { ok: true }, error: null });
    expect(done.finishedAt).not.toBeNull();

    // Late and duplicated events: an old RUNNING, a second COMPLETED, a FAILED. None may change the record.
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1, workerId: "w1" });
    await probe.publishEvent({ runId: run.id, task, type: "COMPLETED", attempt: 2, workerId: "w3", result: { ok: false } });
    await probe.publishEvent({ runId: run.id, task, type: "FAILED", attempt: 3, workerId: "w3", error: { type: "Error", message: "late" } });
    await probe.eventsSettled();
    expect((await call(api.url, "GET", `/v1/runs/${run.id}`)).body).toEqual(done);
  });

  it("ignores a duplicated RUNNING of an older attempt while a retry is pending, and survives malformed events", async () => {
    const task = taskName("late");
    const run = (await call(api.url, "POST", "/v1/runs", { task })).body;
    await probe.publishRawEvent(task, "this is not json");
    await probe.publishRawEvent(task, JSON.stringify({ runId: run.id, task, type: "EXPLODED" }));
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1 });
    await probe.publishEvent({ runId: run.id, task, type: "AWAITING_RETRY", attempt: 1, error: { type: "Error", message: "once" } });
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1 });
    await probe.eventsSettled();
    const r = (await call(api.url, "GET", `/v1/runs/${run.id}`)).body;
    expect(r).toMatchObject({ state: "AWAITING_RETRY", attempts: 1, error: { type: "Error", message: "once" } });
  });

  it("answers results: 202 while running, the result once COMPLETED (waking a long-poll), 409 for FAILED and CANCELLED", async () => {
    const task = taskName("result");
    const run = (await call(api.url, "POST", "/v1/runs", { task })).body;
    const early = await call(api.url, "GET", `/v1/runs/${run.id}/result?wait=0`);
    expect(early.status).toBe(202);
    expect(early.body).toEqual({ id: run.id, state: "PENDING", done: false, result: null, cached: false });

    // The long-poll waits up to 50 s; the COMPLETED event must end it long before that.
    const started = Date.now();
    const poll = call(api.url, "GET", `/v1/runs/${run.id}/result?wait=50`);
    // Before the event, the poll is still waiting.
    expect(await Promise.race([poll.then(() => "done"), sleep(300).then(() => "waiting")])).toBe("waiting");
    await probe.publishEvent({ runId: run.id, task, type: "COMPLETED", result: [1, "two", { three: 3 }] });
    const res = await poll;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: run.id, state: "COMPLETED", done: true, result: [1, "two", { three: 3 }], cached: false });
    expect(Date.now() - started).toBeLessThan(10_000);

    const failed = (await call(api.url, "POST", "/v1/runs", { task })).body;
    const thrown = { type: "TypeError", message: "boom", stack: "TypeError: boom\n    at charge (file:///app/tasks.js:3:9)" };
    await probe.publishEvent({ runId: failed.id, task, type: "FAILED", error: thrown });
    const f = await call(api.url, "GET", `/v1/runs/${failed.id}/result?wait=20`);
    expect(f.status).toBe(409);
    // The task's stack comes with its error, for RunFailedError.remoteStack.
    expect(ErrorBodySchema.parse(f.body)).toMatchObject({ code: "OFFLOAD_RUN_FAILED", statusCode: 409, error: thrown });
    expect((await call(api.url, "GET", `/v1/runs/${failed.id}`)).body.error).toEqual(thrown);

    const cancelled = (await call(api.url, "POST", "/v1/runs", { task })).body;
    await probe.publishEvent({ runId: cancelled.id, task, type: "CANCELLED" });
    const c = await call(api.url, "GET", `/v1/runs/${cancelled.id}/result?wait=20`);
    expect(c.status).toBe(409);
    expect(c.body.code).toBe("OFFLOAD_RUN_CANCELLED");

    expect((await call(api.url, "GET", `/v1/runs/${randomUUID()}/result`)).body.code).toBe("OFFLOAD_RUN_NOT_FOUND");
    const badWait = await call(api.url, "GET", `/v1/runs/${run.id}/result?wait=soon`);
    expect(badWait.status).toBe(400);
    expect(badWait.body.issues.map((i: { path: string }) => i.path)).toContain("wait");
  });

  it("rejects bad input with a 4xx naming the field, and records and dispatches nothing", async () => {
    const task = taskName("bad");
    const cases: { body: unknown; status: number; code: string; path?: string }[] = [
      { body: { task, parameters: {}, colour: "red" }, status: 400, code: "OFFLOAD_VALIDATION", path: "colour" },
      { body: { task: 42 }, status: 400, code: "OFFLOAD_VALIDATION", path: "task" },
      { body: { task: "Not A Task" }, status: 400, code: "OFFLOAD_VALIDATION", path: "task" },
      { body: { task, idempotencyKey: 7 }, status: 400, code: "OFFLOAD_VALIDATION", path: "idempotencyKey" },
      { body: { task, scheduledAt: "tomorrow" }, status: 400, code: "OFFLOAD_VALIDATION", path: "scheduledAt" },
      { body: {}, status: 400, code: "OFFLOAD_VALIDATION", path: "task" },
      { body: `{"task": "${task}",`, status: 400, code: "OFFLOAD_VALIDATION" },
      { body: { task, parameters: { blob: "x".repeat(BODY_LIMIT) } }, status: 413, code: "OFFLOAD_BODY_TOO_LARGE" },
    ];
    for (const c of cases) {
      const res = await call(api.url, "POST", "/v1/runs", c.body);
      expect({ status: res.status, code: res.body?.code }).toEqual({ status: c.status, code: c.code });
      const body = ErrorBodySchema.parse(res.body);
      expect(body.statusCode).toBe(c.status);
      if (c.path) expect(body.issues?.map((i) => i.path)).toContain(c.path);
    }
    const batch = await call(api.url, "POST", "/v1/runs/batch", { runs: [{ task }, { task, parameters: 1, extra: true }] });
    expect(batch.status).toBe(400);
    expect(batch.body.issues.map((i: { path: string }) => i.path)).toContain("runs.1.extra");
    const empty = await call(api.url, "POST", "/v1/runs/batch", { runs: [] });
    expect(empty.status).toBe(400);
    const notJson = await fetch(`${api.url}/v1/runs`, { method: "POST", headers: { "content-type": "text/plain" }, body: `task=${task}` });
    expect(notJson.status).toBe(400);
    expect(ErrorBodySchema.parse(await notJson.json()).code).toBe("OFFLOAD_VALIDATION");

    for (const [query, path] of [
      ["limit=0", "limit"],
      ["limit=many", "limit"],
      ["state=SLEEPING", "state"],
      ["colour=red", "colour"],
      ["cursor=nonsense", "cursor"],
    ]) {
      const res = await call(api.url, "GET", `/v1/runs?task=${task}&${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.issues.map((i: { path: string }) => i.path), query).toContain(path);
    }

    expect((await call(api.url, "GET", `/v1/runs?task=${task}`)).body).toEqual({ runs: [], nextCursor: null });
    expect(await probe.taskMessageCount(task)).toBe(0);
  });

  it("answers 404 with a code for unknown runs, ids that are not UUIDs, and unknown routes", async () => {
    for (const id of [randomUUID(), "not-a-uuid", "1; DROP TABLE runs"]) {
      const res = await call(api.url, "GET", `/v1/runs/${encodeURIComponent(id)}`);
      expect(res.status).toBe(404);
      expect(ErrorBodySchema.parse(res.body)).toMatchObject({ code: "OFFLOAD_RUN_NOT_FOUND", statusCode: 404 });
    }
    const route = await call(api.url, "GET", "/v2/everything");
    expect(route.status).toBe(404);
    expect(ErrorBodySchema.parse(route.body).code).toBe("OFFLOAD_ROUTE_NOT_FOUND");
  });

  it("makes one run for 20 concurrent POSTs with the same idempotency key", async () => {
    const task = taskName("idem");
    const idempotencyKey = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => call(api.url, "POST", "/v1/runs", { task, parameters: { x: 1 }, idempotencyKey })),
    );
    const ids = new Set(answers.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
    for (const a of answers) expect([200, 202]).toContain(a.status);
    expect((await call(api.url, "GET", `/v1/runs?task=${task}`)).body.runs).toHaveLength(1);
    expect((await probe.takeTaskMessages(task, 1)).length).toBe(1);
    const again = await call(api.url, "POST", "/v1/runs", { task, idempotencyKey });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe([...ids][0]);
  });

  it("answers concurrent POSTs each with its own run, and a bad one fails only its own call", async () => {
    const task = taskName("together");
    // PostgreSQL cannot store U+0000: the API refuses it as bad input, and it must not take the others with it.
    const bodies = Array.from({ length: 30 }, (_, i) => ({ task, parameters: i === 7 ? { i, text: "a\u0000b" } : { i } }));
    const answers = await Promise.all(bodies.map((b) => call(api.url, "POST", "/v1/runs", b)));
    expect(answers[7]!.status).toBe(400);
    expect(answers[7]!.body).toMatchObject({ code: "OFFLOAD_VALIDATION", issues: [{ path: "parameters", message: expect.stringContaining("U+0000") }] });
    const good = answers.filter((_, i) => i !== 7);
    for (const [k, a] of good.entries()) {
      expect(a.status).toBe(202);
      expect(a.body).toMatchObject({ task, state: "PENDING", parameters: { i: k < 7 ? k : k + 1 } });
    }
    expect(new Set(good.map((a) => a.body.id)).size).toBe(29);
    expect((await call(api.url, "GET", `/v1/runs?task=${task}&limit=100`)).body.runs).toHaveLength(29);
    expect((await probe.takeTaskMessages(task, 29)).length).toBe(29);
  });

  it("records and dispatches 1000 runs in one batch call, answering them in order", async () => {
    const task = taskName("batch");
    const runs = Array.from({ length: 1000 }, (_, i) => ({ task, parameters: { i } }));
    const res = await call(api.url, "POST", "/v1/runs/batch", { runs });
    expect(res.status).toBe(202);
    expect(res.body.runs).toHaveLength(1000);
    res.body.runs.forEach((r: { parameters: { i: number }; state: string }, i: number) => {
      expect(r.parameters.i).toBe(i);
      expect(r.state).toBe("PENDING");
    });
    expect(await probe.taskMessageCount(task)).toBe(1000);

    // Keys repeated inside a batch and across calls answer the first run.
    const keyed = taskName("batchkey");
    const first = await call(api.url, "POST", "/v1/runs/batch", { runs: [{ task: keyed, idempotencyKey: "k1" }, { task: keyed, idempotencyKey: "k1" }, { task: keyed }] });
    expect(first.body.runs[0].id).toBe(first.body.runs[1].id);
    const second = await call(api.url, "POST", "/v1/runs/batch", { runs: [{ task: keyed, idempotencyKey: "k1" }] });
    expect(second.body.runs[0].id).toBe(first.body.runs[0].id);
    expect(await probe.taskMessageCount(keyed)).toBe(2);
  });

  it("answers each new run exactly as a read of it right after does: scheduled, keyed, traced, limited by key, cached", async () => {
    // The submit path builds its answer from what it sent rather than reading the rows back: this holds it to the read.
    const task = taskName("fresh");
    const source = (await call(api.url, "POST", "/v1/runs", { task, cacheKey: "c1" })).body;
    await probe.publishEvent({ runId: source.id, task, type: "RUNNING", attempt: 1, workerId: "w1" });
    await probe.publishEvent({ runId: source.id, task, type: "COMPLETED", attempt: 1, workerId: "w1", result: { z: [1, 2.5, "ü"], a: null } });
    await probe.eventsSettled();
    // An hour ahead, said in another offset and to the microsecond (its last three digits cut, never rounded up): the answer must say it as the read does.
    const later = new Date(Date.now() + 3 * 3_600_000).toISOString().replace("Z", "999+02:00");
    const bodies = [
      { task, parameters: { zeta: 1, alpha: { nested: [true, null, -0.5, 12345678901234] } }, timeoutSeconds: 0.25 },
      { task, scheduledAt: later, idempotencyKey: "fresh-1", priority: 1, concurrencyKey: "tenant-a", rateLimitKey: "r" },
      { task, parameters: "text", traceContext: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" } },
      { task, cacheKey: "c1", cacheExpiresInSeconds: 60 },
      { task, idempotencyKey: "fresh-1" },
    ];
    const res = await call(api.url, "POST", "/v1/runs/batch", { runs: bodies });
    expect(res.status).toBe(202);
    const answered = res.body.runs as Run[];
    expect(answered.map((r) => r.state)).toEqual(["PENDING", "SCHEDULED", "PENDING", "COMPLETED", "SCHEDULED"]);
    expect(answered[3]).toMatchObject({ cached: true, result: { z: [1, 2.5, "ü"], a: null } });
    expect(answered[4]!.id).toBe(answered[1]!.id);
    for (const run of answered) expect((await call(api.url, "GET", `/v1/runs/${run.id}`)).body).toEqual(run);
    // One run alone answers the run and what could not be checked (no worker registered the task).
    const { warnings, ...single } = (await call(api.url, "POST", "/v1/runs", { task, parameters: [1, { b: 2, a: 1 }], namespace: "team-a" })).body;
    expect(warnings).toHaveLength(1);
    expect((await call(api.url, "GET", `/v1/runs/${single.id}`)).body).toEqual(single);
  });

  it("lists runs newest first, page by page, with an opaque cursor", async () => {
    const task = taskName("list");
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await call(api.url, "POST", "/v1/runs", { task, parameters: i })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    const pages: number[] = [];
    do {
      const q: string = `/v1/runs?task=${task}&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const res = await call(api.url, "GET", q);
      expect(res.status).toBe(200);
      pages.push(res.body.runs.length);
      seen.push(...res.body.runs.map((r: { id: string }) => r.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(pages).toEqual([3, 3, 1]);
    expect(seen).toEqual([...made].reverse());

    const byState = await call(api.url, "GET", `/v1/runs?task=${task}&state=PENDING&limit=500`);
    expect(byState.body.runs).toHaveLength(7);
    expect((await call(api.url, "GET", `/v1/runs?task=${task}&state=COMPLETED`)).body.runs).toHaveLength(0);
  });

  it("without Kubernetes auth, lists the runs of every namespace unless a namespace is named", async () => {
    const task = taskName("namespaces");
    const inA = (await call(api.url, "POST", "/v1/runs", { task, parameters: 1, namespace: "team-a" })).body.id;
    const inDefault = (await call(api.url, "POST", "/v1/runs", { task, parameters: 2 })).body.id;
    const all = await call(api.url, "GET", `/v1/runs?task=${task}`);
    expect(all.body.runs.map((r: { id: string }) => r.id)).toEqual([inDefault, inA]);
    expect(all.body.runs.map((r: { namespace: string }) => r.namespace)).toEqual(["default", "team-a"]);
    const onlyA = await call(api.url, "GET", `/v1/runs?task=${task}&namespace=team-a`);
    expect(onlyA.body.runs.map((r: { id: string }) => r.id)).toEqual([inA]);
  });

  it("holds a scheduled run until it is due, then the sweeper dispatches it", async () => {
    const task = taskName("later");
    const scheduledAt = new Date(Date.now() + 3000).toISOString();
    const res = await call(api.url, "POST", "/v1/runs", { task, scheduledAt });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ state: "SCHEDULED", scheduledAt });
    expect(await probe.taskMessageCount(task)).toBe(0);
    await waitFor("the run to be dispatched", async () => (await call(api.url, "GET", `/v1/runs/${res.body.id}`)).body.state === "PENDING");
    expect(await probe.taskMessageCount(task)).toBe(1);
  });

  it("serves probes and OpenAPI generated from the schemas", async () => {
    expect((await call(api.url, "GET", "/healthz")).body).toEqual({ ok: true });
    expect((await call(api.url, "GET", "/readyz")).status).toBe(200);
    expect((await call(api.url, "GET", "/metrics")).status).toBe(200);
    const doc = (await call(api.url, "GET", "/docs/json")).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/runs", "/v1/runs/batch", "/v1/runs/{id}", "/v1/runs/{id}/result"]));
    expect(doc.paths["/v1/runs"].post.requestBody.content["application/json"].schema.properties.task).toBeDefined();
    expect((await fetch(`${api.url}/docs`)).status).toBeLessThan(400);
  });
});

describe("run API crash between record and publish", () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  let api: ApiProcess | undefined;

  beforeAll(async () => {
    ({ nats, postgres } = await startServers());
  });
  afterAll(async () => {
    await api?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  it("publishes a run recorded but never published once the API is back (exactly one task message)", async () => {
    const db = await postgres.createDatabase("fault");
    const env = { OFFLOAD_NATS_URL: nats.url, OFFLOAD_DATABASE_URL: db, OFFLOAD_REPUBLISH_AFTER_SECONDS: "1" };
    const task = taskName("crash");
    const faulty = await startApiProcess("offload-api-faulty", { ...env, OFFLOAD_TEST_FAULT: "exit-after-record" });
    await expect(call(faulty.url, "POST", "/v1/runs", { task, parameters: { survive: true } })).rejects.toThrow();
    expect(await faulty.child.exited).toBe(1);

    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const rows = (await client.query<{ id: string; state: string }>("SELECT id, state FROM runs WHERE task = $1", [task])).rows;
    await client.end();
    // Recorded PENDING, waiting for its task message (its dispatch outbox row is what the sweeper finds).
    expect(rows).toHaveLength(1);
    expect(rows[0]!.state).toBe("PENDING");
    const probe = await NatsProbe.connect(nats.url);
    try {
      expect(await probe.taskMessageCount(task)).toBe(0);

      api = await startApiProcess("offload-api-restarted", env);
      const id = rows[0]!.id;
      const msgs = await probe.takeTaskMessages(task, 1, 15_000);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.json()).toMatchObject({ runId: id, parameters: { survive: true } });
    } finally {
      await probe.close();
    }
  });
});

describe("run API with a token, on embedded PGlite", () => {
  let nats: NatsServer;
  let dir: { path: string; remove(): Promise<void> };
  let api: ApiProcess | undefined;
  const token = `tok-${randomUUID()}`;
  const auth = { authorization: `Bearer ${token}` };

  beforeAll(async () => {
    [nats, dir] = await Promise.all([startNats(), tempDir("offload-api-pglite-")]);
  });
  afterAll(async () => {
    await api?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  it("needs the bearer token everywhere but the probes, and keeps runs across restarts", async () => {
    const env = { OFFLOAD_NATS_URL: nats.url, OFFLOAD_DATA_DIR: dir.path, OFFLOAD_API_TOKEN: token };
    api = await startApiProcess("offload-api-pglite", env);
    const task = taskName("auth");

    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong" }, { authorization: token }];
    for (const headers of attempts) {
      const res = await call(api.url, "POST", "/v1/runs", { task }, headers);
      expect(res.status).toBe(401);
      expect(ErrorBodySchema.parse(res.body).code).toBe("OFFLOAD_UNAUTHORIZED");
    }
    expect((await call(api.url, "GET", "/v1/runs")).status).toBe(401);
    expect((await call(api.url, "GET", "/docs/json")).status).toBe(401);
    expect((await call(api.url, "GET", "/healthz")).status).toBe(200);
    expect((await call(api.url, "GET", "/readyz")).status).toBe(200);

    const created = await call(api.url, "POST", "/v1/runs", { task, parameters: { a: 1 } }, auth);
    expect(created.status).toBe(202);
    expect(created.body.state).toBe("PENDING");
    expect((await call(api.url, "GET", `/v1/runs?task=${task}`, undefined, auth)).body.runs).toHaveLength(1);

    expect(await api.stop()).toBe(0);
    api = await startApiProcess("offload-api-pglite-again", env);
    const again = await call(api.url, "GET", `/v1/runs/${created.body.id}`, undefined, auth);
    expect(again.status).toBe(200);
    // The submit answer's `warnings` (no worker registered the task) belong to that answer, not to the run.
    expect(again.body).toEqual(RunSchema.parse(created.body));
  });
});

describe("offload-api configuration", () => {
  it("prints usage with every variable, and exits 2 naming a bad one", async () => {
    const { execFile } = await import("node:child_process");
    const { API_BIN } = await import("./helpers.js");
    const run = (args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [API_BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code) : 0, out: stdout + stderr }),
        );
      });
    const help = await run(["--help"], {});
    expect(help.code).toBe(0);
    for (const v of ["OFFLOAD_API_PORT", "OFFLOAD_API_HOST", "OFFLOAD_NATS_URL", "OFFLOAD_DATABASE_URL", "OFFLOAD_DATA_DIR", "OFFLOAD_API_TOKEN", "OFFLOAD_API_BODY_LIMIT", "OFFLOAD_LOG_LEVEL", "OFFLOAD_REPUBLISH_AFTER_SECONDS", "OFFLOAD_TEST_FAULT"]) {
      expect(help.out).toContain(v);
    }
    const bad = await run([], { OFFLOAD_API_PORT: "eighty", OFFLOAD_DATABASE_URL: "mysql://x" });
    expect(bad.code).toBe(2);
    expect(bad.out).toContain("OFFLOAD_API_PORT");
    expect(bad.out).toContain("OFFLOAD_DATABASE_URL");
  });
});
