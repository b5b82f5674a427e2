// The SDK's half of flow control, against the real run API: the keys a task's
// key functions compute and the priority are sent with each run and recorded;
// what cannot be sent (a key function that throws, a bad priority, bad limits)
// fails in the caller before any request.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { z } from "zod";
import {
  ApiError,
  ConfigError,
  InputValidationError,
  LimitKeyError,
  OffloadClient,
  ScheduleNotFoundError,
  isLimitKeyError,
  isScheduleNotFoundError,
  task,
} from "@offload/sdk";
import { startStack, stopSharedPostgres, waitFor, type Stack } from "../support/index.js";

const FIXTURE = new URL("./fixtures/flow-tasks.mjs", import.meta.url).pathname;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
  await stopSharedPostgres();
});

const unique = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;
const Account = z.object({ tenant: z.string(), account: z.string() });

/** A task (served by no worker here) whose runs count under the tenant for concurrency and the account for its rate limit. */
function syncAccount(options: { concurrencyKey?: (input: z.output<typeof Account>) => string } = {}) {
  return task(
    {
      name: unique("sync-account"),
      input: Account,
      concurrency: { limit: 2, key: options.concurrencyKey ?? ((input) => input.tenant) },
      rateLimit: { limit: 100, periodSeconds: 60, key: (input) => `${input.tenant}/${input.account}` },
      client: stack.client,
    },
    async ({ account }) => account,
  );
}

const runsOf = async (name: string): Promise<number> => (await stack.client.listRuns({ task: name })).runs.length;

describe("keys and priority", () => {
  test("delay() sends the keys its key functions compute and the priority; the run records them", async () => {
    const t = syncAccount();
    const urgent = await t.delay({ tenant: "acme", account: "a1" }, { priority: 1 });
    const run = await urgent.status();
    expect(run).toMatchObject({ task: t.name, priority: 1, concurrencyKey: "acme", rateLimitKey: "acme/a1" });

    const usual = await (await t.delay({ tenant: "globex", account: "g7" })).status();
    expect(usual).toMatchObject({ priority: 3, concurrencyKey: "globex", rateLimitKey: "globex/g7" });
  });

  test("a task without key functions sends no keys: its limit is the whole task's", async () => {
    const t = task({ name: unique("whole-task"), input: Account, concurrency: { limit: 1 }, client: stack.client }, async () => null);
    const run = await (await t.delay({ tenant: "acme", account: "a1" }, { priority: 5 })).status();
    expect(run).toMatchObject({ priority: 5, concurrencyKey: null, rateLimitKey: null });
  });

  test("map() sends each input's keys and the priority with every run of the batch", async () => {
    const t = syncAccount();
    const handles = await t.map(
      [
        { tenant: "acme", account: "a1" },
        { tenant: "initech", account: "i2" },
      ],
      { deferred: true, priority: 2 },
    );
    const runs = await Promise.all(handles.map((h) => h.status()));
    expect(runs.map((r) => [r.priority, r.concurrencyKey, r.rateLimitKey])).toEqual([
      [2, "acme", "acme/a1"],
      [2, "initech", "initech/i2"],
    ]);
    for (const h of handles) expect(Array.isArray(h.warnings)).toBe(true);
  });
});

describe("what is refused before any request", () => {
  test("a key function that throws rejects delay() with a LimitKeyError naming the task and the key; nothing is recorded", async () => {
    const t = syncAccount({
      concurrencyKey: (input) => {
        if (input.tenant === "") throw new Error("no tenant");
        return input.tenant;
      },
    });
    const err = await t.delay({ tenant: "", account: "a1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitKeyError);
    expect(isLimitKeyError(err)).toBe(true);
    expect(err).toMatchObject({ code: "OFFLOAD_LIMIT_KEY", task: t.name, limit: "concurrency" });
    expect((err as Error).message).toContain(`task "${t.name}": concurrency.key threw: no tenant`);
    expect(await runsOf(t.name)).toBe(0);
  });

  test.each([
    ["an empty string", () => "", "an empty string"],
    ["a number", () => 42 as unknown as string, "number 42"],
    ["undefined", () => undefined as unknown as string, "undefined"],
    ["a string too long", () => "x".repeat(257), "257 characters"],
  ])("a key function that returns %s rejects delay() and map(); nothing is recorded", async (_what, key, said) => {
    const t = syncAccount({ concurrencyKey: key });
    await expect(t.delay({ tenant: "acme", account: "a1" })).rejects.toThrow(said);
    await expect(t.map([{ tenant: "acme", account: "a1" }])).rejects.toBeInstanceOf(LimitKeyError);
    expect(await runsOf(t.name)).toBe(0);
  });

  test.each([0, 6, 2.5, Number.NaN, "1" as unknown as number])("priority %s rejects delay() and map() with a ConfigError; nothing is recorded", async (priority) => {
    const t = syncAccount();
    const err = await t.delay({ tenant: "acme", account: "a1" }, { priority }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain("priority must be a whole number from 1 (first) to 5 (last)");
    await expect(t.map([{ tenant: "acme", account: "a1" }], { priority })).rejects.toBeInstanceOf(ConfigError);
    expect(await runsOf(t.name)).toBe(0);
  });

  test("task() refuses limits it cannot register, saying what to fix", () => {
    const define = (extra: object) => () => task({ name: "bad-limits", input: Account, ...extra }, async () => null);
    expect(define({ concurrency: { limit: 0 } })).toThrow('task "bad-limits": concurrency.limit: must be a whole number from 1 to 100000');
    expect(define({ concurrency: { limit: 1.5 } })).toThrow("concurrency.limit: must be a whole number");
    expect(define({ concurrency: { limit: 2, key: "tenant" } })).toThrow("concurrency.key: must be a function");
    expect(define({ concurrency: { limit: 2, keys: () => "x" } })).toThrow("unknown: keys");
    expect(define({ rateLimit: { limit: 10 } })).toThrow("rateLimit.periodSeconds: must be a number of seconds above 0, at most 86400");
    expect(define({ rateLimit: { limit: 10, periodSeconds: 0 } })).toThrow("rateLimit.periodSeconds");
    expect(define({ rateLimit: { limit: 10, periodSeconds: 86_401 } })).toThrow("rateLimit.periodSeconds");
    expect(define({ rateLimit: { limit: 100_001, periodSeconds: 1 } })).toThrow("rateLimit.limit");
    expect(define({ concurrency: { limit: 100_000 }, rateLimit: { limit: 1, periodSeconds: 86_400 } })).not.toThrow();
  });
});

describe("what the run API says back", () => {
  test("a run of a task no worker has registered carries the run API's warning on its handle (map() too)", async () => {
    const t = syncAccount();
    const run = await t.delay({ tenant: "acme", account: "a1" });
    expect(run.warnings).toEqual([`no worker has registered task "${t.name}" yet: its parameters were not checked and its limits are not known`]);
    const handles = await t.map([{ tenant: "acme", account: "a2" }, { tenant: "acme", account: "a3" }]);
    for (const h of handles) expect(h.warnings).toEqual(run.warnings);
    expect(t.handle(run.id).warnings).toEqual([]);
  });

  test("once a worker registered a task, GET /v1/tasks shows its definition, bad parameters are refused naming the field, and delay() has no warning", async () => {
    await stack.startWorker({ module: FIXTURE });
    const listed = await waitFor("sync-account's definition in GET /v1/tasks", async () => (await stack.client.listTasks()).find((t) => t.name === "sync-account" && t.definition), 20_000);
    expect(listed.definition).toMatchObject({
      name: "sync-account",
      description: "Syncs one account of a tenant",
      concurrency: { limit: 2, keyed: true },
      rateLimit: { limit: 10, periodSeconds: 1, keyed: false },
      retries: 2,
      timeoutSeconds: 60,
      inputSchema: expect.objectContaining({ required: ["tenant", "account"] }),
    });
    expect(listed.definition!.registeredBy).toMatch(/\S/);

    const refused = await stack.client.createRun({ task: "sync-account", parameters: { tenant: 7, account: "a1" } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 400, code: "OFFLOAD_INVALID_PARAMETERS" });
    expect((refused as ApiError).issues?.map((i) => i.path)).toContain("parameters.tenant");

    // The same task in the app's code: its runs go through the registered limits to the worker.
    const app = task(
      { name: "sync-account", input: Account, concurrency: { limit: 2, key: (input) => input.tenant }, client: stack.client },
      async ({ tenant, account }) => ({ tenant, account }),
    );
    const run = await app.delay({ tenant: "acme", account: "a9" }, { priority: 1 });
    expect(run.warnings).toEqual([]);
    expect(await run.result({ timeoutSeconds: 30 })).toEqual({ tenant: "acme", account: "a9" });
  });
});

describe("schedules", () => {
  test("schedule() puts a schedule that fires runs of the task; the client reads, lists and deletes it; unknown keys are ScheduleNotFoundError", async () => {
    const t = syncAccount();
    const key = unique("every-2s");
    const put = await t.schedule("*/2 * * * * *", { tenant: "acme", account: "a1" }, { key, priority: 2, concurrencyPolicy: "Forbid" });
    // The keys come from the input, once, as delay() computes them: every run the schedule starts counts under them.
    expect(put).toMatchObject({
      key, task: t.name, schedule: "*/2 * * * * *", timeZone: "UTC", concurrencyPolicy: "Forbid", suspend: false, priority: 2,
      concurrencyKey: "acme", rateLimitKey: "acme/a1",
    });
    expect(put.parameters).toEqual({ tenant: "acme", account: "a1" });
    expect(put.nextScheduleTime).not.toBeNull();

    expect(await stack.client.getSchedule(key)).toMatchObject({ key, task: t.name });
    expect((await stack.client.listSchedules()).map((x) => x.key)).toContain(key);
    const fired = await waitFor("a run started by the schedule", async () => (await stack.client.listRuns({ task: t.name })).runs[0], 20_000);
    expect(fired).toMatchObject({ parameters: { tenant: "acme", account: "a1" }, priority: 2, concurrencyKey: "acme", rateLimitKey: "acme/a1" });

    await t.unschedule(key);
    const gone = await stack.client.getSchedule(key).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(ScheduleNotFoundError);
    expect(isScheduleNotFoundError(gone)).toBe(true);
    expect(gone).toMatchObject({ status: 404, code: "OFFLOAD_SCHEDULE_NOT_FOUND", key });
    await expect(t.unschedule(key)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  test("schedule() checks the input, key and options before any request; the run API refuses a cron it cannot read", async () => {
    const t = syncAccount();
    await expect(t.schedule("0 3 * * *", { tenant: "acme" } as never, { key: unique("bad-input") })).rejects.toBeInstanceOf(InputValidationError);
    await expect(t.schedule("0 3 * * *", { tenant: "acme", account: "a1" }, { key: "no spaces" })).rejects.toThrow("schedule(): key");
    await expect(t.schedule("0 3 * * *", { tenant: "acme", account: "a1" }, { key: unique("p"), priority: 9 })).rejects.toBeInstanceOf(ConfigError);
    await expect(
      t.schedule("0 3 * * *", { tenant: "acme", account: "a1" }, { key: unique("policy"), concurrencyPolicy: "Sometimes" as never }),
    ).rejects.toThrow("schedule(): concurrencyPolicy");
    expect(await stack.client.listSchedules()).toEqual([]);
    const bad = await t.schedule("every day", { tenant: "acme", account: "a1" }, { key: unique("bad-cron") }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: "OFFLOAD_INVALID_SCHEDULE" });
  });
});

// The run API's count of create requests answered, by route and status, from its metrics.
async function createRequests(): Promise<Record<string, number>> {
  const text = await (await fetch(`${stack.apiUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^offload_http_request_duration_seconds_count\{method="POST",route="(\/v1\/runs(?:\/batch)?)",status="(\d+)"\} (\d+)$/gm)) {
    counts[`${m[1]} ${m[2]}`] = Number(m[3]);
  }
  return counts;
}
const since = (before: Record<string, number>, after: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

// The fixture's tasks, registered by a worker: their parameters are checked against the registered schema.
async function registered(): Promise<void> {
  if (stack.workers.length === 0) await stack.startWorker({ module: FIXTURE });
  await waitFor("plain's definition in GET /v1/tasks", async () => (await stack.client.listTasks()).find((t) => t.name === "plain" && t.definition), 20_000);
}

describe("concurrent delay() calls share requests", () => {
  const Numbered = z.object({ i: z.number() });

  test("50 concurrent delay()s take fewer requests than calls, each gets its own run, readable at once", async () => {
    const t = task({ name: unique("coalesced"), input: Numbered, client: stack.client }, async () => null);
    const before = await createRequests();
    const handles = await Promise.all(Array.from({ length: 50 }, (_, i) => t.delay({ i })));
    const sent = since(before, await createRequests());
    expect(total(sent)).toBeLessThan(50);
    expect(sent["/v1/runs/batch 202"]).toBeGreaterThan(0);
    expect(new Set(handles.map((h) => h.id)).size).toBe(50);
    // Each handle is its own call's run: read right after delay() resolved, it holds that call's input.
    const runs = await Promise.all(handles.map((h) => h.status()));
    expect(runs.map((r) => r.parameters)).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
    expect(runs.every((r) => r.task === t.name)).toBe(true);
  });

  test("one call whose parameters the registered schema refuses fails alone; the calls sent with it succeed", async () => {
    await registered();
    const before = await createRequests();
    const calls = Array.from({ length: 20 }, (_, i) => stack.client.createRun({ task: "plain", parameters: i === 10 ? { n: "ten" } : { n: i } }));
    const settled = await Promise.allSettled(calls);
    // The refusal reached the batch it was sent in, which was sent again so that it refused only this call.
    expect(since(before, await createRequests())["/v1/runs/batch 400"]).toBeGreaterThan(0);
    const refused = settled[10]!;
    expect(refused.status).toBe("rejected");
    const err = (refused as PromiseRejectedResult).reason as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: "OFFLOAD_INVALID_PARAMETERS" });
    // As a lone call's: the path names its own parameters, not an entry of a batch.
    expect(err.issues?.map((i) => i.path)).toEqual(["parameters.n"]);
    const taken = settled.filter((s, i) => i !== 10).map((s) => (s.status === "fulfilled" ? s.value : undefined));
    expect(taken.map((r) => r?.parameters)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 10).map((n) => ({ n })));
    expect((await stack.client.getRun(taken[12]!.id)).parameters).toEqual({ n: 13 });
  });

  test("two concurrent calls with one idempotency key get one run", async () => {
    const t = task({ name: unique("once"), input: Numbered, client: stack.client }, async () => null);
    const key = unique("key");
    // Two calls ahead take the free requests, so the two keyed calls wait and go in one batch.
    const before = await createRequests();
    const [, , first, second] = await Promise.all([t.delay({ i: 0 }), t.delay({ i: 1 }), t.delay({ i: 2 }, { idempotencyKey: key }), t.delay({ i: 3 }, { idempotencyKey: key })]);
    expect(since(before, await createRequests())["/v1/runs/batch 202"]).toBe(1);
    expect(second!.id).toBe(first!.id);
    expect(await first!.status()).toMatchObject({ idempotencyKey: key, parameters: { i: 2 } });
    expect((await stack.client.listRuns({ task: t.name })).runs).toHaveLength(3);
  });

  test("each caller gets the warnings about its own task, whichever calls it shared a request with", async () => {
    await registered();
    const unknown = task({ name: unique("unregistered"), input: Numbered, client: stack.client }, async () => null);
    const plain = task({ name: "plain", input: z.object({ n: z.number() }), client: stack.client }, async ({ n }) => n);
    const handles = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? unknown.delay({ i }) : plain.delay({ n: i }))));
    const warning = `no worker has registered task "${unknown.name}" yet: its parameters were not checked and its limits are not known`;
    handles.forEach((h, i) => expect(h.warnings).toEqual(i % 2 ? [warning] : []));
  });

  test("coalesce: false sends one request per call", async () => {
    const client = new OffloadClient({ apiUrl: stack.apiUrl, token: "", coalesce: false });
    const t = task({ name: unique("alone"), input: Numbered, client }, async () => null);
    const before = await createRequests();
    const handles = await Promise.all(Array.from({ length: 10 }, (_, i) => t.delay({ i })));
    expect(since(before, await createRequests())).toEqual({ "/v1/runs 202": 10 });
    expect(new Set(handles.map((h) => h.id)).size).toBe(10);
  });
});
