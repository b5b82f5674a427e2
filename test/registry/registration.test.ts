import { randomUUID } from "node:crypto";
import {
  CreateRunsBatchResponseSchema,
  ErrorBodySchema,
  Nats,
  SubmittedRunSchema,
  TaskRegistrationReplySchema,
  type TaskDefinition,
  type TaskRegistration,
  type TaskRegistrationReply,
} from "@offload/sdk/internal";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { WORKER_BIN, freePort, startProcess, startServers, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";
import { call, NatsProbe, startApiProcess, type ApiProcess } from "../api/helpers.js";

// Workers register the tasks they serve over NATS; every run API replica stores the definitions and checks
// parameters against them. Here the worker is played by a raw NATS request, as a worker sends it.

const FIXTURE = new URL("./fixtures/tasks.mjs", import.meta.url).pathname;

const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

/** The definition a worker sends for `task({ name, input: z.object({tenant, account}), concurrency: {limit: 2, key} })`. */
function syncAccount(name: string, input: z.ZodType = z.object({ tenant: z.string(), account: z.string() })): TaskDefinition {
  return {
    name,
    description: "Syncs one account of a tenant.",
    inputSchema: z.toJSONSchema(input, { io: "input" }) as Record<string, unknown>,
    concurrency: { limit: 2, keyed: true },
    retries: 3,
    timeoutSeconds: 60,
  };
}

describe("task registration and parameter checks, over two run API replicas", () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  let databaseUrl: string;
  let a: ApiProcess;
  let b: ApiProcess;
  let probe: NatsProbe;
  const replicas = (): ApiProcess[] => [a, b];
  let env: Record<string, string>;

  beforeAll(async () => {
    ({ nats, postgres } = await startServers());
    databaseUrl = await postgres.createDatabase(`registry_${randomUUID().slice(0, 8)}`);
    env = { OFFLOAD_NATS_URL: nats.url, OFFLOAD_DATABASE_URL: databaseUrl, OFFLOAD_REGISTRY_RELOAD_SECONDS: "0.2" };
    [a, b] = await Promise.all([startApiProcess("offload-api-a", env), startApiProcess("offload-api-b", env)]);
    probe = await NatsProbe.connect(nats.url);
  });

  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  /** Sends a registration as a worker does and collects every replica's answer (both replicas store it before answering). */
  async function register(body: TaskRegistration | string | Uint8Array, answers = 2): Promise<TaskRegistrationReply[]> {
    const replies: TaskRegistrationReply[] = [];
    const payload = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
    const iter = await probe.nc.requestMany(Nats.registerSubject, payload, { strategy: "count", maxMessages: answers, maxWait: 10_000 });
    for await (const m of iter) replies.push(TaskRegistrationReplySchema.parse(m.json()));
    expect(replies).toHaveLength(answers);
    return replies;
  }

  /** The task as GET /v1/tasks lists it. */
  async function listedOn(api: ApiProcess, task: string): Promise<{ name: string; definition?: unknown } | undefined> {
    const res = await call(api.url, "GET", "/v1/tasks");
    expect(res.status).toBe(200);
    return (res.body.tasks as { name: string; definition?: unknown }[]).find((t) => t.name === task);
  }
  const definitionOn = async (api: ApiProcess, task: string): Promise<unknown> => (await listedOn(api, task))?.definition;

  it("stores a registration on every replica at once: GET /v1/tasks lists the task, with no runs and no workers, and its definition", async () => {
    const task = taskName("sync-account");
    const definition = syncAccount(task);
    const replies = await register({ workerId: "worker-1", tasks: [definition] });
    expect(replies).toEqual([
      { ok: true, registered: [task] },
      { ok: true, registered: [task] },
    ]);
    for (const api of replicas()) {
      const listed = await listedOn(api, task);
      expect(listed).toMatchObject({ name: task, backlog: 0, inFlight: 0, workers: [], definition: { ...definition, registeredBy: "worker-1" } });
      expect(Date.parse((listed as { definition: { registeredAt: string } }).definition.registeredAt)).not.toBeNaN();
    }
  });

  it("answers 400 OFFLOAD_INVALID_PARAMETERS naming each field, on both replicas, and records nothing", async () => {
    const task = taskName("sync-account");
    await register({ workerId: "worker-1", tasks: [syncAccount(task)] });
    for (const api of replicas()) {
      const one = await call(api.url, "POST", "/v1/runs", { task, parameters: { tenant: 3 } });
      expect(one.status).toBe(400);
      const body = ErrorBodySchema.parse(one.body);
      expect(body.code).toBe("OFFLOAD_INVALID_PARAMETERS");
      expect(body.issues).toEqual(
        expect.arrayContaining([
          { path: "parameters.tenant", message: "must be string" },
          { path: "parameters.account", message: "is required" },
        ]),
      );
      expect(body.issues).toHaveLength(2);
      expect(body.message).toContain("parameters.tenant: must be string");

      const batch = await call(api.url, "POST", "/v1/runs/batch", {
        runs: [
          { task, parameters: { tenant: "acme", account: "a1" } },
          { task, parameters: { tenant: "acme", account: 7, extra: true } },
        ],
      });
      expect(batch.status).toBe(400);
      expect(ErrorBodySchema.parse(batch.body)).toMatchObject({
        code: "OFFLOAD_INVALID_PARAMETERS",
        issues: [{ path: "runs.1.parameters.account", message: "must be string" }],
      });
    }
    // Neither the bad single run nor the good half of the refused batch was recorded.
    expect((await call(a.url, "GET", `/v1/runs?task=${task}`)).body.runs).toEqual([]);

    // Parameters that fit are recorded, with no warnings.
    const good = await call(b.url, "POST", "/v1/runs", { task, parameters: { tenant: "acme", account: "a1" } });
    expect(good.status).toBe(202);
    expect(SubmittedRunSchema.parse(good.body).warnings).toBeUndefined();
  });

  it("records runs of a task no worker has registered, saying so in warnings (once per task in a batch)", async () => {
    const [x, y] = [taskName("unknown"), taskName("unknown")];
    const one = await call(a.url, "POST", "/v1/runs", { task: x, parameters: { anything: 1 } });
    expect(one.status).toBe(202);
    expect(SubmittedRunSchema.parse(one.body).warnings).toEqual([
      `no worker has registered task "${x}" yet: its parameters were not checked and its limits are not known`,
    ]);
    expect((await call(a.url, "GET", `/v1/runs/${one.body.id}`)).body).not.toHaveProperty("warnings");

    const registered = taskName("sync-account");
    await register({ workerId: "worker-1", tasks: [syncAccount(registered)] });
    const batch = await call(b.url, "POST", "/v1/runs/batch", {
      runs: [{ task: x }, { task: y }, { task: x }, { task: registered, parameters: { tenant: "t", account: "a" } }],
    });
    expect(batch.status).toBe(202);
    const answer = CreateRunsBatchResponseSchema.parse(batch.body);
    expect(answer.runs).toHaveLength(4);
    expect(answer.warnings).toEqual([x, y].map((t) => `no worker has registered task "${t}" yet: its parameters were not checked and its limits are not known`));
  });

  it("takes the last registration of a task: a new input schema rules at once", async () => {
    const task = taskName("evolving");
    await register({ workerId: "worker-1", tasks: [syncAccount(task)] });
    expect((await call(a.url, "POST", "/v1/runs", { task, parameters: { tenant: "t" } })).status).toBe(400);
    await register({ workerId: "worker-2", tasks: [syncAccount(task, z.object({ tenant: z.string(), account: z.string().optional() }))] });
    for (const api of replicas()) expect((await call(api.url, "POST", "/v1/runs", { task, parameters: { tenant: "t" } })).status).toBe(202);
    expect(await definitionOn(b, task)).toMatchObject({ registeredBy: "worker-2" });
  });

  it("refuses a malformed registration with the reason, stores nothing of it, and keeps serving", async () => {
    const task = taskName("bad");
    const refusals: [TaskRegistration | string, RegExp][] = [
      ["{not json", /not JSON/],
      [JSON.stringify({ workerId: "w", tasks: [] }), /tasks/],
      [JSON.stringify({ workerId: "w", tasks: [{ ...syncAccount(task), concurrency: { limit: 0, keyed: false } }] }), /tasks\.0\.concurrency\.limit/],
      [{ workerId: "w", tasks: [syncAccount(task), syncAccount(task)] }, /registered twice/],
    ];
    for (const [body, reason] of refusals) {
      const replies = await register(body);
      for (const reply of replies) {
        expect(reply.ok).toBe(false);
        expect(reply.ok === false && reply.error).toMatch(reason);
      }
    }
    await a.child.waitForOutput("refused a task registration");
    for (const api of replicas()) {
      expect(await definitionOn(api, task)).toBeUndefined();
      expect((await call(api.url, "GET", "/readyz")).status).toBe(200);
      expect((await call(api.url, "POST", "/v1/runs", { task, parameters: { tenant: 3 } })).status).toBe(202);
    }
  });

  it("takes a task whose input schema it cannot use without that schema: its limits apply, its parameters go unchecked, the worker's other tasks keep theirs", async () => {
    const [odd, later, fine] = [taskName("odd-schema"), taskName("old-draft"), taskName("fine")];
    // z.number().max(Infinity) is written `"maximum": null`, which no JSON Schema allows; an SDK of another draft.
    const replies = await register({
      workerId: "w-odd",
      tasks: [
        { ...syncAccount(odd), inputSchema: { type: "object", properties: { n: { type: "number", maximum: null } } } },
        { ...syncAccount(later), inputSchema: { $schema: "http://json-schema.org/draft-07/schema#", type: "object" } },
        syncAccount(fine),
      ],
    });
    for (const reply of replies) expect(reply).toEqual({ ok: true, registered: [fine, later, odd].sort() });
    await a.child.waitForOutput("took a task registration without its input schema");
    for (const api of replicas()) {
      const definition = (await definitionOn(api, odd)) as Record<string, unknown>;
      expect(definition).toMatchObject({ name: odd, concurrency: { limit: 2, keyed: true } });
      expect(definition.inputSchema).toBeUndefined();
      expect((await call(api.url, "POST", "/v1/runs", { task: odd, parameters: { n: "x" }, concurrencyKey: "k" })).status).toBe(202);
      const refused = await call(api.url, "POST", "/v1/runs", { task: fine, parameters: { tenant: 3, account: "a" } });
      expect(refused.body).toMatchObject({ code: "OFFLOAD_INVALID_PARAMETERS", issues: [{ path: "parameters.tenant" }] });
    }
  });

  it("a replica started later knows every registration from the database", async () => {
    const task = taskName("sync-account");
    await register({ workerId: "worker-1", tasks: [syncAccount(task)] });
    const late = await startApiProcess("offload-api-late", env);
    try {
      const res = await call(late.url, "POST", "/v1/runs", { task, parameters: { tenant: "t" } });
      expect(res.status).toBe(400);
      expect(res.body.issues).toEqual([{ path: "parameters.account", message: "is required" }]);
      expect(await definitionOn(late, task)).toMatchObject({ name: task, concurrency: { limit: 2, keyed: true } });
    } finally {
      await late.stop();
    }
  });

  it("converges on what the database holds: a definition stored elsewhere appears, one deleted is forgotten", async () => {
    // As if stored by a replica while these two were cut off from NATS.
    const task = taskName("stored-elsewhere");
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query("INSERT INTO task_definitions (name, definition, registered_by) VALUES ($1, $2::jsonb, 'elsewhere')", [
        task,
        JSON.stringify(syncAccount(task)),
      ]);
      for (const api of replicas()) {
        await waitFor("the stored definition", async () => ((await call(api.url, "POST", "/v1/runs", { task, parameters: {} })).status === 400 ? true : undefined), 10_000, 100);
      }
      await db.query("DELETE FROM task_definitions WHERE name = $1", [task]);
      for (const api of replicas()) {
        await waitFor("the definition forgotten", async () => ((await definitionOn(api, task)) === undefined ? true : undefined), 10_000, 100);
        expect((await call(api.url, "POST", "/v1/runs", { task, parameters: {} })).body.warnings).toHaveLength(1);
      }
    } finally {
      await db.end();
    }
  });

  it("a real offload-worker registers its module's tasks: both replicas check parameters, and a run that fits completes", async () => {
    const task = "registry-sync-account";
    const port = await freePort();
    const worker = startProcess("offload-worker", process.execPath, [WORKER_BIN, "--module", FIXTURE], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_API_URL: a.url,
      OFFLOAD_WORKER_PORT: String(port),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
    });
    try {
      await worker.waitForOutput("tasks registered with the run API", 30_000);
      for (const api of replicas()) {
        expect(await definitionOn(api, task)).toMatchObject({
          name: task,
          description: "Syncs one account of a tenant",
          concurrency: { limit: 2, keyed: true },
          retries: 1,
          timeoutSeconds: 30,
        });
        const bad = await call(api.url, "POST", "/v1/runs", { task, parameters: { tenant: "", account: "a1", pages: 0 } });
        expect(bad.status).toBe(400);
        expect(bad.body.issues).toEqual([
          { path: "parameters.tenant", message: "must NOT have fewer than 1 characters" },
          { path: "parameters.pages", message: "must be >= 1" },
        ]);
      }
      const good = await call(b.url, "POST", "/v1/runs", { task, parameters: { tenant: "acme", account: "a1" }, concurrencyKey: "acme" });
      expect(good.status).toBe(202);
      expect(good.body.warnings).toBeUndefined();
      const done = await waitFor("the run to complete", async () => {
        const run = (await call(a.url, "GET", `/v1/runs/${good.body.id}`)).body;
        return run.state === "COMPLETED" || run.state === "FAILED" ? run : undefined;
      }, 30_000, 100);
      expect(done).toMatchObject({ state: "COMPLETED", result: { tenant: "acme", account: "a1", pages: 1 } });
    } finally {
      await worker.stop(5000);
    }
  });

  it("documents the new answers in the OpenAPI at /docs", async () => {
    const doc = (await call(a.url, "GET", "/docs/json")).body;
    const post = doc.paths["/v1/runs"].post;
    expect(Object.keys(post.responses["202"].content["application/json"].schema.properties)).toContain("warnings");
    expect(post.responses["400"].description).toContain("OFFLOAD_INVALID_PARAMETERS");
    expect(doc.paths["/v1/runs/batch"].post.responses["202"].content["application/json"].schema.properties).toHaveProperty("warnings");
    const tasks = doc.paths["/v1/tasks"].get.responses["200"].content["application/json"].schema;
    expect(JSON.stringify(tasks)).toContain("registeredBy");
  });
});
