import fc from "fast-check";

/** One HTTP request as the fuzz sends it, byte for byte (no client library in between to tidy it up). */
export interface FuzzRequest {
  /** Which generator made it, for the tally and for reading a counterexample. */
  readonly family: string;
  readonly method: string;
  /** The request target as sent: path and query, already percent-encoded where a client would. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Whether a 2xx answer to it may have recorded runs (POST /v1/runs, POST /v1/runs/batch). */
  readonly creates: boolean;
  /**
   * A body-less POST to a route that takes no body, with a JSON content type
   * (what many HTTP clients send): the route must not refuse it for its body.
   */
  readonly bodyless?: boolean;
}

/** What the fuzz needs to know of the API under test: ids of runs that exist, to aim at real records too. */
export interface FuzzTargets {
  runIds: readonly string[];
}

const cut = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

// A counterexample of a 1 MiB body would bury the report: fast-check prints requests through this.
function labelled(r: Omit<FuzzRequest, "family">, family: string): FuzzRequest {
  const req = { family, ...r };
  return Object.assign(req, {
    [fc.toStringMethod]: () =>
      JSON.stringify({ ...req, path: cut(req.path, 300), headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, cut(v, 120)])), body: req.body === undefined ? undefined : cut(req.body, 400) }),
  });
}

// ---- text -------------------------------------------------------------------------------------------------------

/** Any UTF-16 code unit: lone surrogates and U+0000 included, which valid JSON can still carry as escapes. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings PostgreSQL and the validators have choked on, and some plain ones. */
const nastyString = fc.oneof(
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "\udfff", "x\ud83dy", "\udc00\ud800", "😀", "\u202e", "\ufeff", "", " ", "null", "%00", "\\u0000"),
  fc.string({ unit: anyUnit, maxLength: 40 }),
  fc.string({ maxLength: 40 }),
  fc.integer({ min: 257, max: 20_000 }).map((n) => "k".repeat(n)),
);

const taskName = fc.oneof(
  { arbitrary: fc.constant("fuzz-task"), weight: 4 },
  { arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,63}$/), weight: 2 },
  { arbitrary: nastyString, weight: 3 },
  { arbitrary: fc.jsonValue({ maxDepth: 2 }), weight: 1 },
);

/** ISO-looking timestamps, real and impossible: month 13, day 32, hour 24, year 0, odd offsets, garbage. */
const timestamp = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
      fc.integer({ min: 0, max: 61 }),
      fc.constantFrom("Z", "+00:00", "-23:59", "+25:00", "+99:99", ".123456Z", ".1234567890Z", ""),
    )
    .map(([y, mo, d, h, mi, s, z]) => `${String(y).padStart(4, "0")}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${z}`),
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom("2025-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "2025-13-45T99:99:99Z", "2025-01-01T24:00:01Z", "+275760-09-13T00:00:00.000Z", "infinity", "epoch", "now", ""),
  fc.string({ maxLength: 30 }),
);

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

// ---- JSON values ------------------------------------------------------------------------------------------------

/** JSON values whose strings and keys may be anything (lone surrogates, U+0000). */
const nastyJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), nastyString),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** JSON text of arrays or objects nested `depth` levels around a leaf (built as text: no recursion on this side either). */
const deepJsonText = fc
  .record({ depth: fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 500, max: 1200 }), fc.integer({ min: 4000, max: 20_000 })), kind: fc.constantFrom("array", "object", "mixed") })
  .map(({ depth, kind }) => {
    if (kind === "array") return "[".repeat(depth) + "1" + "]".repeat(depth);
    if (kind === "object") return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    return '{"a":['.repeat(depth / 2) + "1" + "]}".repeat(depth / 2);
  });

/** JSON text of one object with very many keys (a huge body gets 413, which is as good an answer). */
const wideJsonText = fc.oneof({ arbitrary: fc.integer({ min: 9_990, max: 10_010 }), weight: 3 }, { arbitrary: fc.integer({ min: 60_000, max: 120_000 }), weight: 1 }).map((n) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(",")}}`);

/** `arb`'s value in `inTen` cases of ten, else absent. */
function sometimes<T>(arb: fc.Arbitrary<T>, inTen: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 10 - inTen }, { arbitrary: arb, weight: inTen });
}

/** Values of the right kind for each field of a run body, that the API takes. */
const benign = {
  task: fc.constantFrom("fuzz-task", "fuzz-other"),
  parameters: fc.jsonValue({ maxDepth: 3 }),
  idempotencyKey: fc.oneof(fc.uuid().map((u) => `fuzz-${u}`), fc.constant("fuzz-repeated-key")),
  // Fixed dates, so that a seed makes the same bodies on every day: past ones are due at once, later ones wait.
  scheduledAt: fc.date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date("2040-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString()),
  timeoutSeconds: fc.integer({ min: 1, max: 3600 }),
  cacheKey: fc.string({ minLength: 1, maxLength: 40 }),
  cacheExpiresInSeconds: fc.integer({ min: 1, max: 86_400 }),
} as const;

const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -1, 1e308, 5e-324, 7 * 24 * 3600 + 1, 100 * 365 * 24 * 3600 + 1));

/** What may go wrong in each field (as JSON text), the nasty families of issue 11 among them. */
const nasty: Record<string, fc.Arbitrary<string>> = {
  task: fc.oneof(taskName, fc.jsonValue({ maxDepth: 2 })).map((v) => JSON.stringify(v)),
  parameters: fc.oneof({ arbitrary: nastyJson.map((v) => JSON.stringify(v)), weight: 6 }, { arbitrary: deepJsonText, weight: 3 }, { arbitrary: wideJsonText, weight: 1 }),
  idempotencyKey: fc.oneof(nastyString, fc.jsonValue({ maxDepth: 1 })).map((v) => JSON.stringify(v)),
  scheduledAt: fc.oneof(timestamp, fc.jsonValue({ maxDepth: 1 })).map((v) => JSON.stringify(v)),
  timeoutSeconds: fc.oneof(number, fc.jsonValue({ maxDepth: 1 })).map((v) => JSON.stringify(v)),
  cacheKey: fc.oneof(nastyString, fc.jsonValue({ maxDepth: 1 })).map((v) => JSON.stringify(v)),
  cacheExpiresInSeconds: fc.oneof(number, fc.jsonValue({ maxDepth: 1 })).map((v) => JSON.stringify(v)),
  unknownField: fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.stringify(v)),
  "": fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.stringify(v)),
  // A computed key: a plain `__proto__:` in a literal would set the prototype, not add the field.
  ["__proto__"]: fc.constant('{"polluted":true}'),
};

/**
 * The JSON text of one run body (`POST /v1/runs`, or an entry of a batch): a
 * body the API takes, with none, one or two of its fields made nasty, so that
 * each nasty part gets past the other checks and reaches the deeper ones (and
 * the database).
 */
const runBodyText: fc.Arbitrary<string> = fc
  .record({
    base: fc.record(
      {
        task: benign.task,
        parameters: benign.parameters,
        idempotencyKey: benign.idempotencyKey,
        scheduledAt: benign.scheduledAt,
        timeoutSeconds: benign.timeoutSeconds,
        cacheKey: benign.cacheKey,
        cacheExpiresInSeconds: benign.cacheExpiresInSeconds,
      },
      { requiredKeys: ["task"] },
    ),
    spoilt: fc.oneof(
      { arbitrary: fc.constant([] as [string, string][]), weight: 3 },
      { arbitrary: fc.uniqueArray(fc.constantFrom(...Object.keys(nasty)), { minLength: 1, maxLength: 2 }).chain((keys) => fc.tuple(...keys.map((k) => nasty[k]!.map((v): [string, string] => [k, v])))), weight: 7 },
    ),
  })
  .map(({ base, spoilt }) => {
    const fields = new Map<string, string>(Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)]));
    for (const [k, v] of spoilt) fields.set(k, v);
    return `{${[...fields].map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
  });

/** A body for a route that creates runs: a run, a batch of them, or something else entirely. */
const createBody = (batch: boolean): fc.Arbitrary<string> =>
  batch
    ? fc.oneof(
        { arbitrary: fc.array(runBodyText, { maxLength: 4 }).map((runs) => `{"runs":[${runs.join(",")}]}`), weight: 6 },
        { arbitrary: fc.integer({ min: 5001, max: 5003 }).map((n) => `{"runs":[${Array(n).fill('{"task":"fuzz-task"}').join(",")}]}`), weight: 1 },
        { arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ runs: v })), weight: 1 },
        { arbitrary: deepJsonText.map((t) => `{"runs":${t}}`), weight: 1 },
      )
    : runBodyText;

/** Body text that is not what the route takes: not JSON, cut short, empty, a bare value. */
const oddBodyText = fc.oneof(
  fc.constantFrom("", " ", "null", "[]", "{}", "1", '"text"', "{", '{"task":', "{'task':'x'}", "\u0000", "\ufeff{}", '{"task":"fuzz-task"}garbage', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}'),
  fc.string({ unit: anyUnit, maxLength: 60 }),
  runBodyText.chain((t) => fc.nat({ max: Math.max(0, t.length - 1) }).map((n) => t.slice(0, n))),
);

// ---- the request line and headers ---------------------------------------------------------------------------------

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "APPLICATION/JSON",
  "application/json;;;",
  "application/vnd.api+json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "text/plain",
  "text/json",
  "application/octet-stream",
  "*/*",
  "json",
  "",
] as const;

const contentType = fc.oneof({ arbitrary: fc.constant("application/json"), weight: 6 }, { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 3 });

/** Percent-encodes every byte but the unreserved ones, so any bytes (bad UTF-8, NUL, `/`) travel in one path segment. */
function encodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0").toUpperCase()}`;
  return out;
}

/** The `:id` of a run route: real ids, near misses, junk, malformed escapes, very long. */
const idSegment = (targets: FuzzTargets): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...targets.runIds), weight: 3 },
    { arbitrary: fc.uuid(), weight: 2 },
    { arbitrary: fc.uuid().map((u) => u.toUpperCase()), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 40 }).map(encodeBytes), weight: 3 },
    { arbitrary: fc.constantFrom("%", "%Z", "%ZZ", "%00", "%ED%A0%80", "%C0%AF", "..", "%2e%2e", "%2F", "%u0000", "%FF%FE"), weight: 2 },
    { arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => "a".repeat(n)), weight: 1 },
  );

const RUN_ROUTES = ["", "/result", "/cancel", "/retry", "/logs", "/events"] as const;
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** A query string of `GET /v1/runs`: the known parameters with any values, unknown ones, repeats, cursors of any date. */
const listQuery = fc
  .record({
    task: sometimes(fc.oneof({ arbitrary: fc.constant("fuzz-task"), weight: 3 }, { arbitrary: taskName.map(String), weight: 1 }, { arbitrary: fc.uint8Array({ maxLength: 20 }).map(encodeBytes), weight: 1 }), 4),
    state: sometimes(fc.oneof({ arbitrary: fc.constantFrom("PENDING", "SCHEDULED", "COMPLETED", "CANCELLED"), weight: 3 }, { arbitrary: fc.constantFrom("pending", "NOPE", ""), weight: 1 }, { arbitrary: nastyString, weight: 1 }), 4),
    limit: sometimes(fc.oneof({ arbitrary: fc.integer({ min: 1, max: 500 }).map(String), weight: 3 }, { arbitrary: fc.integer({ min: -10, max: 100_000 }).map(String), weight: 1 }, { arbitrary: fc.constantFrom("1e3", "NaN", "0x10", "", "1.5", "9".repeat(400)), weight: 1 }), 4),
    cursor: sometimes(
      fc.oneof(
        { arbitrary: fc.tuple(timestamp, fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }))).map((key) => Buffer.from(JSON.stringify(key)).toString("base64url")), weight: 4 },
        { arbitrary: fc.tuple(timestamp.map((t) => t.replace(/Z$/, ".000000Z")), fc.uuid()).map((key) => Buffer.from(JSON.stringify(key)).toString("base64url")), weight: 4 },
        { arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString("base64url")), weight: 1 },
        { arbitrary: fc.string({ maxLength: 80 }), weight: 1 },
        { arbitrary: fc.integer({ min: 60, max: 1500 }).map((d) => Buffer.from("[".repeat(d) + "]".repeat(d)).toString("base64url")), weight: 1 },
      ),
      6,
    ),
    extra: sometimes(fc.string({ maxLength: 10 }), 1),
    repeatTask: sometimes(fc.constant("task=a&task=b"), 1),
  })
  .map((q) =>
    Object.entries(q)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => (k === "repeatTask" ? v : `${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "\ufffd"))}`))
      .join("&"),
  );

/** `?wait=` of the result route, kept well under a second so that a long-poll never holds the fuzz up. */
const waitQuery = fc.oneof(
  fc.constantFrom("", "wait=0", "wait=0.1", "wait=-1", "wait=61", "wait=NaN", "wait=Infinity", "wait=1e400", "wait=abc", "wait=0&wait=0", "nope=1"),
  fc.double({ min: -1e6, max: 0.2, noNaN: true }).map((w) => `wait=${w}`),
);

/** Headers no route expects: oversized (431 from the HTTP layer), many, or odd. */
const oddHeaders = fc.oneof(
  fc.integer({ min: 17_000, max: 80_000 }).map((n) => ({ "x-fuzz": "h".repeat(n) })),
  fc.integer({ min: 100, max: 300 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-fuzz-${i}`, "v".repeat(100)]))),
  fc.constantFrom<Record<string, string>>(
    { authorization: "Bearer " },
    { authorization: "Basic Zm9vOmJhcg==" },
    { accept: "text/event-stream" },
    { accept: "application/xml" },
    { "accept-encoding": "gzip, br, zstd" },
    { "x-http-method-override": "DELETE" },
    { "content-encoding": "gzip" },
    { "transfer-encoding": "chunked" },
    { expect: "100-continue" },
  ),
);

// ---- requests -----------------------------------------------------------------------------------------------------

/** Every kind of request the fuzz sends, over every route of the run API and some that do not exist. */
export function fuzzRequests(targets: FuzzTargets): fc.Arbitrary<FuzzRequest> {
  const json = (ct: string): Record<string, string> => ({ "content-type": ct });

  const create = fc.record({ batch: fc.boolean(), ct: contentType }).chain(({ batch, ct }) =>
    createBody(batch).map((body) => labelled({ method: "POST", path: batch ? "/v1/runs/batch" : "/v1/runs", headers: json(ct), body, creates: true }, batch ? "batch body" : "run body")),
  );
  const oddCreate = fc.record({ batch: fc.boolean(), ct: contentType, body: oddBodyText }).map(({ batch, ct, body }) =>
    labelled({ method: "POST", path: batch ? "/v1/runs/batch" : "/v1/runs", headers: json(ct), body, creates: true }, "odd body"),
  );
  const runRoute = fc
    .record({ id: idSegment(targets), route: fc.constantFrom(...RUN_ROUTES), method: fc.constantFrom(...METHODS), query: waitQuery, emptyJson: fc.boolean() })
    .map(({ id, route, method, query, emptyJson }) =>
      labelled(
        {
          method,
          path: `/v1/runs/${id}${route}${route === "/result" ? `?${query}` : ""}`,
          // Many clients send a body-less POST with a JSON content type; others with none.
          headers: method !== "GET" && emptyJson ? json("application/json") : {},
          body: method !== "GET" && emptyJson ? "" : undefined,
          creates: false,
          // Only with a well-formed id is the (missing) body the one thing a refusal could be about.
          bodyless: method === "POST" && (route === "/cancel" || route === "/retry") && /^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(id),
        },
        "run route",
      ),
    );
  const actionBody = fc
    .record({ id: fc.constantFrom(...targets.runIds), action: fc.constantFrom("cancel", "retry"), ct: contentType, body: oddBodyText })
    .map(({ id, action, ct, body }) => labelled({ method: "POST", path: `/v1/runs/${id}/${action}`, headers: json(ct), body, creates: false }, "action body"));
  const list = listQuery.map((q) => labelled({ method: "GET", path: `/v1/runs?${q}`, headers: {}, creates: false }, "list query"));
  const tasks = fc.constantFrom("/v1/tasks", "/v1/tasks?x=1", "/v1/tasks/", "/v1/tasks/x").map((path) => labelled({ method: "GET", path, headers: {}, creates: false }, "tasks"));
  const unknown = fc
    .record({ segments: fc.array(fc.oneof(fc.uint8Array({ maxLength: 12 }).map(encodeBytes), fc.constantFrom("v1", "v2", "runs", "..", "%2e%2e", "")), { minLength: 1, maxLength: 5 }), method: fc.constantFrom(...METHODS) })
    .map(({ segments, method }) => labelled({ method, path: `/${segments.join("/")}`, headers: {}, creates: false }, "unknown route"));
  const headers = fc
    .record({ target: fc.constantFrom("/v1/runs", "/v1/runs/batch", "/v1/tasks", `/v1/runs/${targets.runIds[0]}`), headers: oddHeaders })
    .map(({ target, headers }) =>
      labelled(
        target.endsWith("/runs") || target.endsWith("/batch")
          ? { method: "POST", path: target, headers: { ...headers, "content-type": "application/json" }, body: '{"runs":[{"task":"fuzz-task"}]}', creates: true }
          : { method: "GET", path: target, headers, creates: false },
        "headers",
      ),
    );

  return fc.oneof(
    { arbitrary: create, weight: 8 },
    { arbitrary: oddCreate, weight: 3 },
    { arbitrary: runRoute, weight: 5 },
    { arbitrary: actionBody, weight: 2 },
    { arbitrary: list, weight: 4 },
    { arbitrary: tasks, weight: 1 },
    { arbitrary: unknown, weight: 2 },
    { arbitrary: headers, weight: 2 },
  );
}

/**
 * The requests issue 11 found answered 500, or without an `OFFLOAD_*` code,
 * or refused: tried first on every run, whatever the seed.
 */
export function knownNasty(targets: FuzzTargets): FuzzRequest[] {
  const id = targets.runIds[0]!;
  const post = (path: string, body: string, family: string): FuzzRequest => labelled({ method: "POST", path, headers: { "content-type": "application/json" }, body, creates: true }, family);
  const run = (fields: string): FuzzRequest => post("/v1/runs", `{"task":"fuzz-task",${fields}}`, "issue 11");
  const cursor = (createdAt: string): FuzzRequest =>
    labelled({ method: "GET", path: `/v1/runs?cursor=${Buffer.from(JSON.stringify([createdAt, id])).toString("base64url")}`, headers: {}, creates: false }, "issue 11");
  return [
    run(`"parameters":${"[".repeat(5000)}${"]".repeat(5000)}`),
    run(`"parameters":${'{"a":'.repeat(6000)}1${"}".repeat(6000)}`),
    // ~900 levels with a valid task broke the embedded database for good.
    run(`"parameters":${"[".repeat(900)}1${"]".repeat(900)}`),
    run(`"parameters":${'{"a":'.repeat(950)}1${"}".repeat(950)}`),
    post("/v1/runs/batch", `{"runs":[{"task":"fuzz-task","parameters":${"[".repeat(900)}${"]".repeat(900)}}]}`, "issue 11"),
    cursor("2025-13-45T99:99:99.000000Z"),
    cursor("2025-02-30T00:00:00.000000Z"),
    cursor("0000-01-01T00:00:00.000000Z"),
    cursor("2025-01-01T24:00:01.000000Z"),
    run(`"scheduledAt":"0000-01-01T00:00:00Z"`),
    run(`"scheduledAt":"2025-02-30T00:00:00Z"`),
    run(`"parameters":{"v":"\\ud800"}`),
    run(`"parameters":{"\\udfff":1}`),
    run(`"parameters":["a\\u0000b"]`),
    run(`"cacheKey":"a\\u0000b"`),
    run(`"idempotencyKey":"\\ud800"`),
    run(`"parameters":{${Array.from({ length: 10_001 }, (_, i) => `"k${i}":0`).join(",")}}`),
    labelled({ method: "GET", path: "/v1/tasks", headers: { "x-fuzz": "h".repeat(20_000) }, creates: false }, "issue 11"),
    labelled({ method: "GET", path: "/v1/runs/%", headers: {}, creates: false }, "issue 11"),
    labelled({ method: "GET", path: "/v1/runs/%E0%A4%A", headers: {}, creates: false }, "issue 11"),
    labelled({ method: "GET", path: `/v1/runs/${"a".repeat(2000)}`, headers: {}, creates: false }, "issue 11"),
    ...(["cancel", "retry"] as const).map((action) =>
      labelled({ method: "POST", path: `/v1/runs/${id}/${action}`, headers: { "content-type": "application/json" }, body: "", creates: false, bodyless: true }, "issue 11"),
    ),
  ];
}
