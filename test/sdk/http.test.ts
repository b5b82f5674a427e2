/**
 * The SDK client's HTTP transport (node:http with a keep-alive agent), against
 * real servers on loopback: what an app sees when the run API is behind a path,
 * silent, or not there, and that calls reuse one connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiError, ApiUnreachableError, OffloadClient } from "@offload/sdk";
import { freePort } from "../support/ports.js";

const servers: Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

const tasks = { tasks: [{ name: "t", backlog: 0, inFlight: 0, workers: [] }] };

describe("OffloadClient over HTTP", () => {
  it("keeps the API URL's path, sends the token, and reuses one connection for calls one after another", async () => {
    const seen: string[] = [];
    let connections = 0;
    const { url, server } = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(tasks));
    });
    server.on("connection", () => connections++);
    const client = new OffloadClient({ apiUrl: `${url}/offload/`, token: "tok" });
    for (let i = 0; i < 3; i++) expect(await client.listTasks()).toEqual(tasks.tasks);
    expect(seen).toEqual(Array(3).fill("GET /offload/v1/tasks Bearer tok"));
    expect(connections).toBe(1);
  });

  it("gives up on an API that does not answer after requestTimeoutMs, saying so", async () => {
    const { url } = await serve(() => undefined);
    const client = new OffloadClient({ apiUrl: url, token: "", requestTimeoutMs: 200 });
    const err = await client.listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect(err).toMatchObject({ code: "OFFLOAD_API_UNREACHABLE", message: expect.stringContaining("no answer within 200 ms") });
  });

  it("names the URL to check when nothing listens there", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const err = await new OffloadClient({ apiUrl: url, token: "" }).listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as Error).message).toContain(`cannot reach the run API at ${url}`);
    expect((err as Error).message).toContain("check OFFLOAD_API_URL");
  });

  it("reads a large answer whole", async () => {
    const big = { tasks: Array.from({ length: 5000 }, (_, i) => ({ name: `task-${i}`, backlog: i, inFlight: 0, workers: [] })) };
    const { url } = await serve((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(big)));
    expect(await new OffloadClient({ apiUrl: url, token: "" }).listTasks()).toHaveLength(5000);
  });
});

// A run as the run API answers it, for the stand-in API below.
function runOf(body: { task: string; parameters?: unknown }, n: number): object {
  const at = new Date(0).toISOString();
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`, task: body.task, state: "PENDING", parameters: body.parameters ?? {}, attempts: 0,
    createdAt: at, scheduledAt: at, startedAt: null, finishedAt: null, updatedAt: at, result: null, resultRef: null, error: null,
    cacheKey: null, cached: false, idempotencyKey: null, workerId: null, namespace: "default", priority: 3, concurrencyKey: null,
    rateLimitKey: null, waitingFor: null,
  };
}

// A stand-in run API whose single POSTs record runs and whose batch POST answers `batch` (status and code).
async function createApi(batch: { status: number; code: string }): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  let made = 0;
  const { url } = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { task: string; runs?: unknown[] };
      seen.push(`${req.url} ${body.runs?.length ?? 1}`);
      const json = { "content-type": "application/json" };
      if (req.url === "/v1/runs") res.writeHead(202, json).end(JSON.stringify(runOf(body, ++made)));
      else res.writeHead(batch.status, json).end(JSON.stringify({ code: batch.code, message: `batch answered ${batch.status}`, statusCode: batch.status }));
    });
  });
  return { url, seen };
}

describe("concurrent createRun() calls sharing requests", () => {
  const calls = (client: OffloadClient) => Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.createRun({ task: "t", parameters: { i } })));

  it("an error about the whole request reaches every call of the batch, which is not sent again", async () => {
    const api = await createApi({ status: 503, code: "OFFLOAD_UNAVAILABLE" });
    const settled = await calls(new OffloadClient({ apiUrl: api.url, token: "" }));
    // Two calls went at once, alone; the eight made while both were in flight went as one batch.
    expect(api.seen).toEqual(["/v1/runs 1", "/v1/runs 1", "/v1/runs/batch 8"]);
    expect(settled.slice(0, 2).map((s) => s.status)).toEqual(["fulfilled", "fulfilled"]);
    for (const s of settled.slice(2)) expect((s as PromiseRejectedResult).reason).toMatchObject({ status: 503, code: "OFFLOAD_UNAVAILABLE" });
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(ApiError);
  });

  it("a batch too large for the API (413) is sent again call by call, each getting its own run", async () => {
    const api = await createApi({ status: 413, code: "OFFLOAD_BODY_TOO_LARGE" });
    const settled = await calls(new OffloadClient({ apiUrl: api.url, token: "" }));
    expect(api.seen.slice(0, 3)).toEqual(["/v1/runs 1", "/v1/runs 1", "/v1/runs/batch 8"]);
    expect(api.seen.slice(3)).toEqual(Array(8).fill("/v1/runs 1"));
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value.parameters : s.reason))).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
  });

  it("every call gets the network error when the API is not there", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const settled = await calls(new OffloadClient({ apiUrl: url, token: "" }));
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(ApiUnreachableError);
  });
});
