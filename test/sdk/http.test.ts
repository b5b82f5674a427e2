/**
 * The SDK client's HTTP transport (node:http with a keep-alive agent), against
 * real servers on loopback: what an app sees when the run API is behind a path,
 * silent, or not there, and that calls reuse one connection.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiUnreachableError, OffloadClient } from "@offload/sdk";
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
