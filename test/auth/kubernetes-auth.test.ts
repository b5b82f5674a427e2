/**
 * A real `offload-api` with OFFLOAD_AUTH=kubernetes against the Kubernetes
 * stand-in, which answers TokenReview and SubjectAccessReview as kube-apiserver
 * does and evaluates real RBAC objects: the chart's own ClusterRoles
 * (`helm template`), bound per namespace with RoleBindings. Callers hold
 * ServiceAccount tokens the stand-in issues for audience `offload`.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiError, OffloadClient } from "@offload/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiProcess, type ApiProcess } from "../api/helpers.js";
import { ensureHelm, template } from "../chart/helm.js";
import { startFakeKube, type FakeKube } from "../k8s/index.js";
import { startServers, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";

const AUDIENCE = "offload";
// Each ServiceAccount in namespace `a` and what it is bound to there.
const BINDINGS = {
  app: "offload-runs-creator",
  viewer: "offload-runs-viewer",
  ops: "offload-runs-operator",
  // The built-in role: the chart's roles aggregate into it, so a namespace editor needs no binding of ours.
  editor: "edit",
  // Only here to be rate limited without disturbing the others.
  limited: "offload-runs-creator",
} as const;
type Sa = keyof typeof BINDINGS;
// Requests one caller may make per window (the window is long, so the test never races its end).
const RATE_MAX = 100;

let fake: FakeKube;
let servers: { nats: NatsServer; postgres: PostgresServer } | undefined;
let api: ApiProcess | undefined;
let dir: string | undefined;
const tokens = {} as Record<Sa, string>;

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, opts: { token?: string | undefined; body?: unknown; authorization?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${api!.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  const json = text && res.headers.get("content-type")?.startsWith("application/json");
  return { status: res.status, headers: res.headers, body: json ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
const as = (sa: Sa) => ({
  delay: (extra: Record<string, unknown> = {}) => call("POST", "/v1/runs", { token: tokens[sa], body: { task: "add", parameters: { a: 1 }, ...extra } }),
  get: (path: string) => call("GET", path, { token: tokens[sa] }),
  post: (path: string, body: unknown = {}) => call("POST", path, { token: tokens[sa], body }),
});

beforeAll(async () => {
  ensureHelm();
  fake = await startFakeKube();
  for (const ns of ["a", "b"]) fake.ensureNamespace(ns);
  // The chart's own ClusterRoles, as `helm install` would create them.
  for (const role of template().ofKind("ClusterRole").filter((r) => r.metadata.name.startsWith("offload-runs-"))) {
    fake.create(role as never);
  }
  for (const [sa, role] of Object.entries(BINDINGS)) {
    fake.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: "a" } });
    fake.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `${sa}-runs`, namespace: "a" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
      subjects: [{ kind: "ServiceAccount", name: sa, namespace: "a" }],
    });
    tokens[sa as Sa] = fake.issueToken("a", sa, { audiences: [AUDIENCE] });
  }
  servers = await startServers();
  const db = await servers.postgres.createDatabase(`auth_${randomUUID().slice(0, 8)}`);
  api = await startApiProcess("offload-api", {
    OFFLOAD_NATS_URL: servers.nats.url,
    OFFLOAD_DATABASE_URL: db,
    OFFLOAD_AUTH: "kubernetes",
    KUBECONFIG: await fake.writeKubeconfig(),
    OFFLOAD_RATE_LIMIT_PER_SECOND: "1",
    OFFLOAD_RATE_LIMIT_WINDOW_SECONDS: String(RATE_MAX),
  });
  dir = await mkdtemp(join(tmpdir(), "offload-auth-"));
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await Promise.all([servers?.nats.stop(), servers?.postgres.stop()]);
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("authentication (TokenReview)", () => {
  it("refuses no token, a malformed header, a non-JWT, an expired and a wrong-audience token with 401, never echoing the token", async () => {
    const expired = fake.issueToken("a", "app", { audiences: [AUDIENCE], expirationSeconds: 600, issuedAt: new Date(Date.now() - 700_000) });
    const otherAudience = fake.issueToken("a", "app", { audiences: ["https://kubernetes.default.svc.cluster.local"] });
    const cases: [string, { token?: string; authorization?: string }, RegExp][] = [
      ["no token", {}, /missing `Authorization: Bearer <token>`/],
      ["malformed header", { authorization: `Basic ${tokens.app}` }, /malformed/],
      ["not a JWT", { token: "abc.def" }, /not a ServiceAccount token/],
      ["expired", { token: expired }, /expired/],
      ["wrong audience", { token: otherAudience }, /did not accept the bearer token for audience "offload"/],
    ];
    for (const [what, opts, message] of cases) {
      const res = await call("GET", "/v1/runs", opts);
      expect({ what, status: res.status, code: res.body.code }).toEqual({ what, status: 401, code: "OFFLOAD_UNAUTHORIZED" });
      expect(res.body.message).toMatch(message);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      if (opts.token) expect(JSON.stringify(res.body)).not.toContain(opts.token);
    }
  });

  it("leaves the probes and metrics open", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) expect((await call("GET", path)).status).toBe(200);
  });
});

describe("authorization per namespace (SubjectAccessReview)", () => {
  it("lets offload-runs-creator delay in its own namespace (the run records it) and refuses another namespace with 403", async () => {
    const mine = await as("app").delay();
    expect(mine.status).toBe(202);
    expect(mine.body.namespace).toBe("a");
    const named = await as("app").delay({ namespace: "a" });
    expect(named.status).toBe(202);

    const elsewhere = await as("app").delay({ namespace: "b" });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.code).toBe("OFFLOAD_FORBIDDEN");
    expect(elsewhere.body.message).toMatch(/system:serviceaccount:a:app may not create runs\.offload\.dev in namespace b/);
    // A batch naming a namespace it may not use records nothing.
    const before = ((await as("app").get("/v1/runs?limit=500")).body.runs as unknown[]).length;
    const batch = await as("app").post("/v1/runs/batch", { runs: [{ task: "add" }, { task: "add", namespace: "b" }] });
    expect(batch.status).toBe(403);
    expect(((await as("app").get("/v1/runs?limit=500")).body.runs as unknown[]).length).toBe(before);
  });

  it("reads, cancels and retries follow get, delete and update in the run's namespace", async () => {
    const run = (await as("app").delay()).body;
    const id = String(run.id);
    // Read: creator and viewer have get.
    for (const sa of ["app", "viewer"] as const) {
      const got = await as(sa).get(`/v1/runs/${id}`);
      expect(got.status).toBe(200);
      expect(got.body.namespace).toBe("a");
      expect((await as(sa).get(`/v1/runs/${id}/result`)).status).toBe(202);
      expect((await as(sa).get(`/v1/runs/${id}/logs`)).status).toBe(200);
    }
    // The viewer may not delay, the creator may not cancel nor retry.
    expect((await as("viewer").delay()).status).toBe(403);
    const cancel = await as("app").post(`/v1/runs/${id}/cancel`);
    expect(cancel.status).toBe(403);
    expect(cancel.body.message).toMatch(/may not delete runs\.offload\.dev in namespace a/);
    expect((await as("app").post(`/v1/runs/${id}/retry`)).body.message).toMatch(/may not update runs\.offload\.dev in namespace a/);
    // The operator role may: cancel ends the unstarted run, and retry is authorized, then refused for its state.
    const cancelled = await as("ops").post(`/v1/runs/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe("CANCELLED");
    const retry = await as("ops").post(`/v1/runs/${id}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.code).toBe("OFFLOAD_RUN_NOT_RETRYABLE");
  });

  it("lists the runs of one namespace, the caller's own by default, and needs list there", async () => {
    const page = await as("viewer").get("/v1/runs?limit=500");
    expect(page.status).toBe(200);
    const runs = page.body.runs as { namespace: string }[];
    expect(runs.length).toBeGreaterThan(0);
    expect(new Set(runs.map((r) => r.namespace))).toEqual(new Set(["a"]));
    const other = await as("viewer").get("/v1/runs?namespace=b");
    expect(other.status).toBe(403);
    expect(other.body.message).toMatch(/may not list runs\.offload\.dev in namespace b/);
  });

  it("authorizes schedules as the runs they start: put needs create, get get, the list list, delete delete", async () => {
    const key = `nightly-${randomUUID().slice(0, 8)}`;
    const body = { task: "add", schedule: "0 3 1 1 *", parameters: { a: 1 } };
    const put = (sa: Sa, extra: Record<string, unknown> = {}): Promise<Answer> =>
      call("PUT", `/v1/schedules/${key}`, { token: tokens[sa], body: { ...body, ...extra } });
    const created = await put("app");
    expect(created.status).toBe(201);
    expect(created.body.namespace).toBe("a");
    expect((await put("app", { namespace: "b" })).body.message).toMatch(/may not create runs\.offload\.dev in namespace b/);
    expect((await put("viewer")).status).toBe(403);
    for (const sa of ["app", "viewer"] as const) expect((await as(sa).get(`/v1/schedules/${key}`)).body.key).toBe(key);
    const listed = await as("viewer").get("/v1/schedules");
    expect((listed.body.schedules as { key: string; namespace: string }[]).map((s) => [s.namespace, s.key])).toEqual([["a", key]]);
    expect((await as("viewer").get("/v1/schedules?namespace=b")).body.message).toMatch(/may not list runs\.offload\.dev in namespace b/);
    const refused = await call("DELETE", `/v1/schedules/${key}`, { token: tokens.app });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/may not delete runs\.offload\.dev in namespace a/);
    expect((await call("DELETE", `/v1/schedules/${key}`, { token: tokens.ops })).status).toBe(204);
    expect((await as("app").get(`/v1/schedules/${key}`)).body.code).toBe("OFFLOAD_SCHEDULE_NOT_FOUND");
  });

  it("lets a namespace editor (the built-in edit role, which the chart's roles aggregate into) delay runs", async () => {
    expect((await as("editor").delay()).status).toBe(202);
  });
});

describe("when the Kubernetes API server is away", () => {
  it("answers 503 OFFLOAD_UNAVAILABLE, not 500 nor a crash, and recovers when it is back", async () => {
    const port = fake.port;
    // A token no verdict is cached for.
    const fresh = fake.issueToken("a", "app", { audiences: [AUDIENCE] });
    await fake.stop();
    try {
      const res = await call("GET", "/v1/runs", { token: fresh });
      expect(res.status).toBe(503);
      expect(res.body.code).toBe("OFFLOAD_UNAVAILABLE");
    } finally {
      await fake.start(port);
    }
    expect((await call("GET", "/v1/runs", { token: fresh })).status).toBe(200);
  });
});

describe("the SDK's token file", () => {
  it("reads OFFLOAD_TOKEN_FILE and picks up a token rotated by a rename over the file", async () => {
    const file = join(dir!, "token");
    await writeFile(file, `${tokens.app}\n`);
    const saved = { file: process.env.OFFLOAD_TOKEN_FILE, token: process.env.OFFLOAD_API_TOKEN };
    process.env.OFFLOAD_TOKEN_FILE = file;
    delete process.env.OFFLOAD_API_TOKEN;
    try {
      const client = new OffloadClient({ apiUrl: api!.url });
      expect((await client.createRun({ task: "add" })).namespace).toBe("a");
      // The kubelet swaps in a new file; this one is the viewer's, which may not delay: the client notices within seconds.
      await writeFile(`${file}.new`, tokens.viewer);
      await rename(`${file}.new`, file);
      const refused = await waitFor("the client to send the rotated token", async () => {
        try {
          await client.createRun({ task: "add" });
          return undefined;
        } catch (err) {
          return err instanceof ApiError ? err : undefined;
        }
      }, 15_000, 200);
      expect(refused.code).toBe("OFFLOAD_FORBIDDEN");
      // An expired token is replaced by a fresh one: the 401 makes the client read the file again at once and retry.
      const expired = fake.issueToken("a", "app", { audiences: [AUDIENCE], expirationSeconds: 600, issuedAt: new Date(Date.now() - 700_000) });
      await writeFile(`${file}.new`, expired);
      await rename(`${file}.new`, file);
      const stale = new OffloadClient({ apiUrl: api!.url });
      await expect(stale.getRun(randomUUID())).rejects.toMatchObject({ code: "OFFLOAD_UNAUTHORIZED" });
      await writeFile(`${file}.new`, tokens.app);
      await rename(`${file}.new`, file);
      expect((await stale.createRun({ task: "add" })).namespace).toBe("a");
      // OFFLOAD_API_TOKEN, when set, wins over the file.
      process.env.OFFLOAD_API_TOKEN = "shared-token-that-is-wrong";
      await expect(new OffloadClient({ apiUrl: api!.url }).getRun(randomUUID())).rejects.toMatchObject({ code: "OFFLOAD_UNAUTHORIZED" });
    } finally {
      for (const [k, v] of [["OFFLOAD_TOKEN_FILE", saved.file], ["OFFLOAD_API_TOKEN", saved.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe("the rate limit", () => {
  it("answers 429 OFFLOAD_RATE_LIMITED with Retry-After past a caller's limit, and only for that caller", async () => {
    let last: Answer | undefined;
    for (let i = 0; i <= RATE_MAX; i++) last = await as("limited").get("/v1/runs?limit=1");
    expect(last!.status).toBe(429);
    expect(last!.body.code).toBe("OFFLOAD_RATE_LIMITED");
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another identity has its own count.
    expect((await as("viewer").get("/v1/runs?limit=1")).status).toBe(200);
    // The probes are never limited: more of them than the limit all answer.
    for (let i = 0; i <= RATE_MAX; i++) expect((await call("GET", "/healthz")).status).toBe(200);
  });
});
