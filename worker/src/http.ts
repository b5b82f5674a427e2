import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";

/** The worker's probes and metrics. */
export interface ProbeServer {
  readonly app: FastifyInstance;
  /** The port it listens on (the one picked when asked for 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * `/healthz`: 200 while the process runs. `/readyz`: 200 once consuming, 503
 * while starting or draining. `/metrics`: Prometheus text. Rejects with the
 * `listen()` error (e.g. `EADDRINUSE`), having closed what it opened.
 */
export async function startProbeServer(options: { host: string; port: number; isReady: () => boolean; registry: Registry }): Promise<ProbeServer> {
  const app = Fastify({ logger: false });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready" });
  });
  app.get("/metrics", async (_req, reply) => {
    const body = await options.registry.metrics();
    return reply.header("content-type", options.registry.contentType).send(body);
  });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : options.port;
  return { app, port, close: () => app.close() };
}
