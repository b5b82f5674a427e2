// Hostile and odd input to the run API (issue 11): every answer is 2xx or a 4xx
// with an OFFLOAD_* code, a rejected request records nothing, and the database
// (the embedded PGlite above all) is still whole afterwards.
import { randomUUID } from "node:crypto";
import { ErrorBodySchema, MAX_JSON_DEPTH, type ErrorCode } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../api/helpers.js";
import { startStack, stopSharedPostgres, type DbKind, type Stack } from "../support/index.js";
import { rawKeepAlive, rawRequest } from "./raw-http.js";

/** `depth` arrays inside one another, written as text: JSON.stringify itself would recurse. */
const nestedArrays = (depth: number, inner = "1"): string => "[".repeat(depth) + inner + "]".repeat(depth);
/** Objects `{"a":{"a":…}}` `depth` deep, as text. */
const nestedObjects = (depth: number): string => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

/** Asserts a 4xx error body with `code` (and, when given, an issue at `path`); answers the body. */
function expectError(res: { status: number; body: unknown }, status: number, code: ErrorCode, what: string): void {
  expect(res.status, what).toBe(status);
  const body = ErrorBodySchema.parse(res.body);
  expect(body.code, what).toBe(code);
  expect(body.statusCode, what).toBe(status);
}

afterAll(() => stopSharedPostgres());

describe.each<DbKind>(["pglite", "postgres"])("the run API on %s refuses what it cannot store", (db) => {
  let stack: Stack;
  const task = `robust-${db}`;
  const post = (body: unknown, path = "/v1/runs") => call(stack.apiUrl, "POST", path, body);
  /** How many runs of the test's task are recorded. */
  const recorded = async (): Promise<number> => {
    const res = await call(stack.apiUrl, "GET", `/v1/runs?task=${task}&limit=500`);
    expect(res.status).toBe(200);
    return (res.body as { runs: unknown[] }).runs.length;
  };
  const stillWhole = async (): Promise<void> => {
    expect((await call(stack.apiUrl, "GET", "/readyz")).status).toBe(200);
    const ok = await post({ task, parameters: { n: 1 } });
    expect(ok.status).toBe(202);
    expect((await call(stack.apiUrl, "GET", `/v1/runs/${(ok.body as { id: string }).id}`)).status).toBe(200);
  };

  beforeAll(async () => {
    stack = await startStack({ db });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(`takes parameters ${MAX_JSON_DEPTH} levels deep, refuses deeper ones before any recursion, and the database stays whole`, async () => {
    const before = await recorded();
    // Exactly at the bound: stored and read back as sent.
    const atBound = await post(`{"task":"${task}","parameters":${nestedArrays(MAX_JSON_DEPTH)}}`);
    expect(atBound.status).toBe(202);
    const back = await call(stack.apiUrl, "GET", `/v1/runs/${(atBound.body as { id: string }).id}`);
    expect(JSON.stringify(back.body.parameters)).toBe(nestedArrays(MAX_JSON_DEPTH));

    // One past the bound, the depth that broke PGlite for good (~900), and far past what overflowed the validator's stack.
    for (const depth of [MAX_JSON_DEPTH + 1, 900, 1000, 6000, 100_000]) {
      for (const [what, text] of [
        ["arrays", `{"task":"${task}","parameters":${nestedArrays(depth)}}`],
        ["objects", `{"task":"${task}","parameters":${nestedObjects(depth)}}`],
        ["in a batch", `{"runs":[{"task":"${task}","parameters":${nestedArrays(depth)}}]}`],
      ] as const) {
        const path = what === "in a batch" ? "/v1/runs/batch" : "/v1/runs";
        expectError(await post(text, path), 400, "OFFLOAD_VALIDATION", `${what} ${depth} deep`);
      }
    }
    // Deep nesting outside the parameters is refused too (unknown fields would be, but only after a recursive walk).
    expectError(await post(`{"task":"${task}","junk":${nestedArrays(50_000)}}`), 400, "OFFLOAD_VALIDATION", "deep junk field");
    expect(await recorded()).toBe(before + 1);
    await stillWhole();
  });

  it("refuses objects with too many keys or too long a key", async () => {
    const before = await recorded();
    const many = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i]));
    expectError(await post({ task, parameters: many }), 400, "OFFLOAD_VALIDATION", "10,001 keys");
    expectError(await post({ task, parameters: { ["k".repeat(1025)]: 1 } }), 400, "OFFLOAD_VALIDATION", "a 1,025-character key");
    expect(await recorded()).toBe(before);
  });

  it("refuses U+0000 and lone surrogates in every stored field, as values and as keys", async () => {
    const before = await recorded();
    const cases: [string, string][] = [
      ["a lone high surrogate in a value", `{"task":"${task}","parameters":{"s":"\\ud800"}}`],
      ["a lone low surrogate in a value", `{"task":"${task}","parameters":["ok","x\\udfffy"]}`],
      ["a lone surrogate in a key", `{"task":"${task}","parameters":{"\\ud83d":1}}`],
      ["a lone surrogate deep down", `{"task":"${task}","parameters":${nestedArrays(10, '"\\udc00"')}}`],
      ["U+0000 in a key", `{"task":"${task}","parameters":{"a\\u0000b":1}}`],
      ["U+0000 in the cacheKey", `{"task":"${task}","cacheKey":"k\\u0000"}`],
      ["a lone surrogate in the cacheKey", `{"task":"${task}","cacheKey":"k\\ud800"}`],
      ["U+0000 in the idempotencyKey", `{"task":"${task}","idempotencyKey":"k\\u0000"}`],
      ["a lone surrogate in the idempotencyKey", `{"task":"${task}","idempotencyKey":"\\udbff"}`],
      ["a lone surrogate in the task name", `{"task":"a\\ud800"}`],
      ["U+0000 in a batch entry", `{"runs":[{"task":"${task}"},{"task":"${task}","parameters":"\\u0000"}]}`],
    ];
    for (const [what, text] of cases) {
      const res = await post(text, text.startsWith('{"runs"') ? "/v1/runs/batch" : "/v1/runs");
      expectError(res, 400, "OFFLOAD_VALIDATION", what);
    }
    // A well-formed pair (an emoji) is a character like any other.
    const emoji = await post(`{"task":"${task}","parameters":{"\\ud83d\\ude00":"\\ud83d\\ude00"},"cacheKey":"\\ud83d\\ude00"}`);
    expect(emoji.status).toBe(202);
    expect(emoji.body.parameters).toEqual({ "😀": "😀" });
    expect(await recorded()).toBe(before + 1);
    await stillWhole();
  });

  it("takes only real dates within PostgreSQL's range, in scheduledAt and in cursors", async () => {
    const before = await recorded();
    for (const scheduledAt of [
      "0000-01-01T00:00:00Z",
      "2025-02-30T00:00:00Z",
      "2025-13-45T99:00:00Z",
      "2025-01-01T24:00:01Z",
      "2023-02-29T00:00:00Z",
      "2025-01-01T00:00:00+25:00",
      "0001-01-01T00:00:00+14:00",
      "9999-12-31T23:00:00-02:00",
    ]) {
      expectError(await post({ task, scheduledAt }), 400, "OFFLOAD_VALIDATION", `scheduledAt ${scheduledAt}`);
    }
    expect(await recorded()).toBe(before);
    for (const scheduledAt of ["2024-02-29T12:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"]) {
      expect((await post({ task, scheduledAt })).status, scheduledAt).toBe(202);
    }

    const cursor = (createdAt: string): string => Buffer.from(JSON.stringify([createdAt, randomUUID()])).toString("base64url");
    for (const createdAt of [
      "2025-13-45T99:00:00.000000Z",
      "2025-02-30T00:00:00.000000Z",
      "0000-01-01T00:00:00.000000Z",
      "2025-01-01T24:00:01.000000Z",
    ]) {
      const res = await call(stack.apiUrl, "GET", `/v1/runs?task=${task}&cursor=${cursor(createdAt)}`);
      expectError(res, 400, "OFFLOAD_VALIDATION", `cursor at ${createdAt}`);
    }
    // A real cursor still pages.
    const page = await call(stack.apiUrl, "GET", `/v1/runs?task=${task}&limit=1`);
    expect(page.body.nextCursor).toEqual(expect.any(String));
    expect((await call(stack.apiUrl, "GET", `/v1/runs?task=${task}&limit=1&cursor=${page.body.nextCursor}`)).status).toBe(200);
    await stillWhole();
  });

  it("refuses a cache lifetime past PostgreSQL's time range", async () => {
    expectError(await post({ task, cacheKey: "forever", cacheExpiresInSeconds: 1e300 }), 400, "OFFLOAD_VALIDATION", "1e300 s");
    expect((await post({ task, cacheKey: "decade", cacheExpiresInSeconds: 10 * 365 * 24 * 3600 })).status).toBe(202);
  });

  it("answers errors of the HTTP layer in the same envelope", async () => {
    const envelope = (res: { status: number; body: string }, status: number, code: ErrorCode, what: string): void => {
      expect(res.status, `${what}: ${res.body}`).toBe(status);
      const body = ErrorBodySchema.parse(JSON.parse(res.body));
      expect(body.code, what).toBe(code);
    };
    envelope(await rawRequest(stack.apiUrl, `GET /v1/runs HTTP/1.1\r\nX-Big: ${"x".repeat(20_000)}`), 431, "OFFLOAD_HEADERS_TOO_LARGE", "headers too large");
    // On a kept-alive socket (as the SDK's) whose first answer went out in full, the bad second request is answered too.
    const both = await rawKeepAlive(stack.apiUrl, "GET /healthz HTTP/1.1", `GET /v1/runs HTTP/1.1\r\nX-Big: ${"x".repeat(20_000)}`);
    expect(both, "a 431 after a 200 on one socket").toMatch(/^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 431 [\s\S]*"OFFLOAD_HEADERS_TOO_LARGE"/);
    envelope(await rawRequest(stack.apiUrl, "GET /v1/runs/%E0%A4%A HTTP/1.1"), 400, "OFFLOAD_VALIDATION", "broken percent-encoding");
    envelope(await rawRequest(stack.apiUrl, "GET /v1/runs?task=%E0%A4%A HTTP/1.1"), 400, "OFFLOAD_VALIDATION", "broken percent-encoding in the query");
    envelope(await rawRequest(stack.apiUrl, `GET /v1/runs/${"a".repeat(2000)} HTTP/1.1`), 400, "OFFLOAD_VALIDATION", "an over-long path parameter");
    envelope(await rawRequest(stack.apiUrl, `GET /v1/runs/${"a".repeat(200)} HTTP/1.1`), 404, "OFFLOAD_RUN_NOT_FOUND", "a long run id");
    envelope(await rawRequest(stack.apiUrl, "GET /nowhere HTTP/1.1"), 404, "OFFLOAD_ROUTE_NOT_FOUND", "no such route");
    envelope(
      await rawRequest(stack.apiUrl, "POST /v1/runs HTTP/1.1\r\nContent-Type: application/xml", `<task>${task}</task>`),
      415,
      "OFFLOAD_UNSUPPORTED_MEDIA_TYPE",
      "xml",
    );
    envelope(await rawRequest(stack.apiUrl, "POST /v1/runs HTTP/1.1\r\nContent-Type: application/json", `{"task":`), 400, "OFFLOAD_VALIDATION", "bad JSON");
    envelope(
      await rawRequest(stack.apiUrl, "POST /v1/runs HTTP/1.1\r\nContent-Type: application/json", `{"__proto__":{"x":1},"task":"${task}"}`),
      400,
      "OFFLOAD_VALIDATION",
      "prototype poisoning",
    );
    envelope(await rawRequest(stack.apiUrl, "POST /v1/runs HTTP/1.1\r\nContent-Type: application/json", ""), 400, "OFFLOAD_VALIDATION", "no body where one is needed");
    await stillWhole();
  });

  it("accepts an empty JSON body where the route takes none (cancel, retry)", async () => {
    const made = await post({ task, scheduledAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(made.status).toBe(202);
    const id = (made.body as { id: string }).id;
    const json = { "content-type": "application/json" };
    const cancel = await call(stack.apiUrl, "POST", `/v1/runs/${id}/cancel`, "", json);
    expect(cancel.status).toBe(200);
    expect(cancel.body.state).toBe("CANCELLED");
    // A retry of a run that did not fail is refused for that reason, not for its empty body.
    expectError(await call(stack.apiUrl, "POST", `/v1/runs/${id}/retry`, "", json), 409, "OFFLOAD_RUN_NOT_RETRYABLE", "retry with an empty body");
    // And with no content-type and no body at all, as before.
    expectError(await call(stack.apiUrl, "POST", `/v1/runs/${id}/retry`), 409, "OFFLOAD_RUN_NOT_RETRYABLE", "retry with no body");
  });
});
