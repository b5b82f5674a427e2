/**
 * The worker's probes and metrics on node:http. Three fixed GET routes need
 * no router, validation nor plugins: fastify cost a worker ~23 MiB of RSS
 * (measured with the bench) for them, about a fifth of its peak.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";

/** The worker's probes and metrics. */
export interface ProbeServer {
  readonly server: Server;
  /** The port it listens on (the one picked when asked for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * `/healthz`: 200 while the process runs. `/readyz`: 200 once consuming, 503
 * while starting or draining. `/metrics`: Prometheus text. Anything else: 404
 * (405 for another method on a known path). Rejects with the `listen()` error
 * (e.g. `EADDRINUSE`), having closed what it opened.
 */
export async function startProbeServer(options: { host: string; port: number; isReady: () => boolean; registry: Registry }): Promise<ProbeServer> {
  const server = createServer((req, res) => void answer(req, res, options));
  // Probes are short: a kubelet that left a connection open must not hold up close().
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once("error", failed);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", failed);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : options.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

async function answer(req: IncomingMessage, res: ServerResponse, options: { isReady: () => boolean; registry: Registry }): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0]!;
  try {
    if (!ROUTES.has(path)) return json(res, 404, { status: "not found", message: `no route ${path}: try /healthz, /readyz or /metrics` });
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return json(res, 405, { status: "method not allowed", message: `${path} answers GET` });
    }
    if (path === "/healthz") return json(res, 200, { status: "ok" });
    if (path === "/readyz") {
      const ready = options.isReady();
      return json(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready" });
    }
    const body = await options.registry.metrics();
    res.writeHead(200, { "content-type": options.registry.contentType, "content-length": Buffer.byteLength(body) });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (err) {
    // A metric collector that throws costs a scrape, never the process.
    if (!res.headersSent) json(res, 500, { status: "error", message: err instanceof Error ? err.message : String(err) });
    else res.destroy();
  }
}

function json(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}
