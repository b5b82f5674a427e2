// Execution semantics, the SDK's half, without servers: the task options
// contract (checked once in task(), frozen), retry decisions and delays, cache
// keys, and what delay()/map() send. A small HTTP server plays the run API.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  ConfigError,
  NonRetryableError,
  OffloadClient,
  RetryAfterError,
  RunFinishedError,
  RunNotRetryableError,
  TaskTimeoutError,
  task,
} from "@offload/sdk";
import { InputValidationError, ResultNotSerializableError, cacheKeyOf, canonicalJson, decideRetry, retryDelayFor, type CreateRunBody, type Run } from "@offload/sdk/internal";

const input = z.object({ n: z.number() });
const noop = async (): Promise<number> => 1;

describe("task(): options are checked once and frozen", () => {
  it("accepts the documented options and freezes them (lists included)", () => {
    const t = task(
      {
        name: "opts-ok",
        input,
        retries: 3,
        retryDelaySeconds: [1, 2],
        retryOn: ["HttpError"],
        timeoutSeconds: 5,
        cache: { policy: ["inputs", "source"], expiresInSeconds: 60 },
        onCompletion: () => undefined,
        onFailure: () => undefined,
      },
      noop,
    );
    expect(Object.isFrozen(t.options)).toBe(true);
    expect(Object.isFrozen(t.options.retryDelaySeconds)).toBe(true);
    expect(Object.isFrozen(t.options.retryOn)).toBe(true);
    expect(Object.isFrozen(t.options.cache)).toBe(true);
    expect(Object.isFrozen(t.options.cache?.policy)).toBe(true);
    task({ name: "opts-exp", input, retries: 1, retryDelaySeconds: { exponential: { baseSeconds: 1, maxSeconds: 30, jitter: 0.2 } } }, noop);
    task({ name: "opts-fn", input, retryOn: (e) => e instanceof TypeError, cache: { policy: ["task"] } }, noop);
    // The hooks and the cache key function are typed from the task's function and schema (checked by tsc);
    // the result's type reaches onCompletion when the function's parameter is annotated (TypeScript types
    // the options, the first argument, before it infers the type of a context-sensitive second one).
    const typed = task(
      {
        name: "opts-typed",
        input,
        cache: { key: (i) => String(i.n.toFixed(0)) },
        onCompletion: (run, result) => void (result.doubled.toFixed(0) + run.runId),
        onFailure: (_run, error) => void error.message,
      },
      async ({ n }: z.output<typeof input>) => ({ doubled: n * 2 }),
    );
    expect(typed.name).toBe("opts-typed");
  });

  it.each([
    [{ retries: -1 }, /retries/],
    [{ retries: 1.5 }, /retries/],
    [{ retryDelaySeconds: -1 }, /retryDelaySeconds/],
    [{ retryDelaySeconds: [] }, /at least one delay/],
    [{ retryDelaySeconds: { exponential: { baseSeconds: 0 } } }, /baseSeconds/],
    [{ retryDelaySeconds: { exponential: { baseSeconds: 10, maxSeconds: 5 } } }, /maxSeconds/],
    [{ retryDelaySeconds: { exponential: { baseSeconds: 1, jitter: 2 } } }, /jitter/],
    [{ retryOn: [] }, /retryOn/],
    [{ retryOn: 42 }, /retryOn/],
    [{ timeoutSeconds: 0 }, /timeoutSeconds/],
    [{ timeoutSeconds: 30 * 24 * 3600 }, /at most 604800/],
    [{ cache: { policy: [] } }, /cache.policy/],
    [{ cache: { policy: ["inputs", "inputs"] } }, /twice/],
    [{ cache: { policy: ["everything"] } }, /cache.policy/],
    [{ cache: { expiresInSeconds: 0 } }, /expiresInSeconds/],
    [{ cache: { policy: ["source"], key: () => "k" } }, /has no "inputs"/],
    [{ onCompletion: "yes" }, /onCompletion/],
  ])("rejects %j with a ConfigError naming the option", (bad, message) => {
    const make = (): unknown => task({ name: "opts-bad", input, ...(bad as object) }, noop);
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(message);
    expect(make).toThrow(/task "opts-bad"/);
  });
});

describe("retries: which failures get another try, and when", () => {
  it("retries while attempt <= retries, with the delay of that attempt (the last repeats)", () => {
    const s = { retries: 3, retryDelaySeconds: [1, 5] };
    expect(decideRetry(s, 1, new Error("x"))).toEqual({ retry: true, delaySeconds: 1 });
    expect(decideRetry(s, 2, new Error("x"))).toEqual({ retry: true, delaySeconds: 5 });
    expect(decideRetry(s, 3, new Error("x"))).toEqual({ retry: true, delaySeconds: 5 });
    expect(decideRetry(s, 4, new Error("x"))).toMatchObject({ retry: false });
    expect(decideRetry({}, 1, new Error("x"))).toMatchObject({ retry: false, reason: "the task has no retries" });
    expect(decideRetry({ retries: 1 }, 1, new Error("x"))).toEqual({ retry: true, delaySeconds: 0 });
  });

  it("never retries NonRetryableError, invalid input or an unserializable result; RetryAfterError sets its own delay", () => {
    const s = { retries: 5, retryDelaySeconds: 1, retryOn: () => true };
    expect(decideRetry(s, 1, new NonRetryableError("no"))).toMatchObject({ retry: false });
    expect(decideRetry(s, 1, new InputValidationError("t", []))).toMatchObject({ retry: false });
    expect(decideRetry(s, 1, new ResultNotSerializableError("big"))).toMatchObject({ retry: false });
    expect(decideRetry({ ...s, retryOn: () => false }, 1, new RetryAfterError("later", 42))).toEqual({ retry: true, delaySeconds: 42 });
    expect(decideRetry({ retries: 1 }, 2, new RetryAfterError("later", 42))).toMatchObject({ retry: false });
    // Timeouts are errors like any other.
    expect(decideRetry({ retries: 1 }, 1, new TaskTimeoutError(1))).toEqual({ retry: true, delaySeconds: 0 });
  });

  it("retryOn: a predicate, or class names matched along the prototype chain", () => {
    class HttpError extends Error {}
    class NotFound extends HttpError {
      override name = "NotFound";
    }
    const byName = { retries: 2, retryOn: ["HttpError", "TimeoutError"] };
    expect(decideRetry(byName, 1, new NotFound("gone"))).toMatchObject({ retry: true });
    expect(decideRetry(byName, 1, new TaskTimeoutError(3))).toMatchObject({ retry: true });
    expect(decideRetry(byName, 1, new TypeError("bug"))).toMatchObject({ retry: false });
    expect(decideRetry(byName, 1, "a string")).toMatchObject({ retry: false });
    const byFn = { retries: 2, retryOn: (e: unknown) => e instanceof HttpError };
    expect(decideRetry(byFn, 1, new NotFound("gone"))).toMatchObject({ retry: true });
    expect(decideRetry(byFn, 1, new Error("x"))).toMatchObject({ retry: false });
    const throwing = { retries: 2, retryOn: (): boolean => { throw new Error("oops"); } };
    expect(decideRetry(throwing, 1, new Error("x"))).toMatchObject({ retry: false, reason: expect.stringContaining("oops") });
  });

  it("exponential delays double from the base, are capped, and jitter stays within its share", () => {
    const exp = { exponential: { baseSeconds: 2, maxSeconds: 20 } };
    expect([1, 2, 3, 4, 5].map((a) => retryDelayFor(exp, a))).toEqual([2, 4, 8, 16, 20]);
    const jittered = { exponential: { baseSeconds: 10, jitter: 0.5 } };
    expect(retryDelayFor(jittered, 1, () => 0)).toBe(5);
    expect(retryDelayFor(jittered, 1, () => 0.5)).toBe(10);
    expect(retryDelayFor(jittered, 2, () => 0.999999)).toBeCloseTo(30, 3);
    // Jitter never goes past the cap.
    expect(retryDelayFor({ exponential: { baseSeconds: 10, maxSeconds: 10, jitter: 1 } }, 1, () => 0.99)).toBe(10);
  });
});

describe("cache keys", () => {
  const fnA = async ({ n }: { n: number }): Promise<number> => n + 1;
  const fnB = async ({ n }: { n: number }): Promise<number> => n + 2;

  it("are the same for equal inputs in any key order, and differ by task, input and source as the policy says", () => {
    const both = { policy: ["inputs", "source"] as const };
    const k = cacheKeyOf("t", fnA, both, { a: 1, b: { c: 2, d: [1, 2] } });
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKeyOf("t", fnA, both, { b: { d: [1, 2], c: 2 }, a: 1 })).toBe(k);
    expect(cacheKeyOf("u", fnA, both, { a: 1, b: { c: 2, d: [1, 2] } })).not.toBe(k);
    expect(cacheKeyOf("t", fnA, both, { a: 2, b: { c: 2, d: [1, 2] } })).not.toBe(k);
    expect(cacheKeyOf("t", fnB, both, { a: 1, b: { c: 2, d: [1, 2] } })).not.toBe(k);
    // Without "source", a code change keeps the key; with only "task", the input does not matter.
    expect(cacheKeyOf("t", fnA, { policy: ["inputs"] }, { n: 1 })).toBe(cacheKeyOf("t", fnB, { policy: ["inputs"] }, { n: 1 }));
    expect(cacheKeyOf("t", fnA, { policy: ["task"] }, { n: 1 })).toBe(cacheKeyOf("t", fnA, { policy: ["task"] }, { n: 2 }));
    // The default policy is inputs + source.
    expect(cacheKeyOf("t", fnA, {}, { n: 1 })).toBe(cacheKeyOf("t", fnA, both, { n: 1 }));
  });

  it("a custom key replaces the inputs part", () => {
    const byUrl = { policy: ["inputs"] as const, key: (i: { url: string }) => i.url };
    expect(cacheKeyOf("t", fnA, byUrl as never, { url: "x", width: 1 })).toBe(cacheKeyOf("t", fnA, byUrl as never, { url: "x", width: 2 }));
    expect(cacheKeyOf("t", fnA, byUrl as never, { url: "x" })).not.toBe(cacheKeyOf("t", fnA, byUrl as never, { url: "y" }));
  });

  it("canonical JSON sorts keys at every depth and follows JSON.stringify otherwise", () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [3, undefined] } })).toBe('{"a":{"c":[3,null]},"b":1}');
    expect(canonicalJson(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalJson(cycle)).toThrow(/cycle/);
  });
});

describe("delay() and map() send what the run API needs", () => {
  const sent: { method: string; path: string; body: unknown }[] = [];
  const run = (body: CreateRunBody): Run => ({
    id: "00000000-0000-4000-8000-000000000001",
    task: body.task,
    state: "PENDING",
    parameters: body.parameters ?? null,
    attempts: 0,
    createdAt: new Date().toISOString(),
    scheduledAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    updatedAt: new Date().toISOString(),
    result: null,
    resultRef: null,
    error: null,
    cacheKey: body.cacheKey ?? null,
    cached: false,
    idempotencyKey: null,
    workerId: null,
    namespace: body.namespace ?? "default",
    priority: body.priority ?? 3,
    concurrencyKey: body.concurrencyKey ?? null,
    rateLimitKey: body.rateLimitKey ?? null,
    waitingFor: null,
  });
  // A real HTTP server on loopback standing in for the run API: it records each call and answers as told.
  let answer: (method: string, path: string, body: unknown) => { status: number; body: unknown } = () => ({ status: 500, body: {} });
  const fakeApi = (a: typeof answer): void => {
    answer = a;
  };
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const body = text ? JSON.parse(text) : undefined;
      sent.push({ method: req.method ?? "GET", path, body });
      const a = answer(req.method ?? "GET", path, body);
      res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.body));
    });
  });
  let client: OffloadClient;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new OffloadClient({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "" });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => {
    sent.length = 0;
  });

  it("sends the cache key and expiry with each run of a cached task, and the per-run timeout", async () => {
    fakeApi((_m, path, body) => (path === "/v1/runs/batch" ? { status: 202, body: { runs: (body as { runs: CreateRunBody[] }).runs.map(run) } } : { status: 202, body: run(body as CreateRunBody) }));
    const fn = async ({ n }: { n: number }): Promise<number> => n;
    const cached = task({ name: "cached", input, client, cache: { expiresInSeconds: 30 } }, fn);
    await cached.delay({ n: 1 }, { timeoutSeconds: 7 });
    await cached.map([{ n: 1 }, { n: 2 }]);
    const [one, batch] = sent.map((s) => s.body) as [CreateRunBody, { runs: CreateRunBody[] }];
    expect(one).toMatchObject({ task: "cached", parameters: { n: 1 }, timeoutSeconds: 7, cacheExpiresInSeconds: 30 });
    expect(one.cacheKey).toBe(cacheKeyOf("cached", fn, { policy: ["inputs", "source"] }, { n: 1 }));
    expect(batch.runs[0]!.cacheKey).toBe(one.cacheKey);
    expect(batch.runs[1]!.cacheKey).not.toBe(one.cacheKey);
    const plain = task({ name: "plain", input, client }, fn);
    await plain.delay({ n: 1 });
    expect(sent[2]!.body).toEqual({ task: "plain", parameters: { n: 1 } });
    await expect(plain.delay({ n: 1 }, { timeoutSeconds: -1 })).rejects.toThrow(ConfigError);
  });

  it("handle.cancel(), retry() and logs(), and listTasks(), call their endpoints; a 409 becomes a typed error", async () => {
    const t = task({ name: "plain", input, client }, noop);
    const h = t.handle("00000000-0000-4000-8000-000000000001");
    fakeApi((_m, path) => {
      if (path.endsWith("/cancel")) return { status: 409, body: { code: "OFFLOAD_RUN_FINISHED", message: "already COMPLETED", statusCode: 409 } };
      if (path.endsWith("/retry")) return { status: 409, body: { code: "OFFLOAD_RUN_NOT_RETRYABLE", message: "is RUNNING", statusCode: 409 } };
      if (path.endsWith("/logs")) return { status: 200, body: { lines: [{ at: new Date().toISOString(), level: "info", msg: "hi", attempt: 1 }], truncated: false } };
      return { status: 200, body: { tasks: [{ name: "plain", backlog: 2, inFlight: 1, workers: [] }] } };
    });
    await expect(h.cancel()).rejects.toBeInstanceOf(RunFinishedError);
    await expect(h.cancel()).rejects.toMatchObject({ status: 409, code: "OFFLOAD_RUN_FINISHED", runId: h.id });
    await expect(h.retry()).rejects.toBeInstanceOf(RunNotRetryableError);
    expect((await h.logs()).lines[0]).toMatchObject({ msg: "hi", level: "info" });
    expect(await client.listTasks()).toEqual([{ name: "plain", backlog: 2, inFlight: 1, workers: [] }]);
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual([
      `POST /v1/runs/${h.id}/cancel`,
      `POST /v1/runs/${h.id}/cancel`,
      `POST /v1/runs/${h.id}/retry`,
      `GET /v1/runs/${h.id}/logs`,
      "GET /v1/tasks",
    ]);
  });
});
