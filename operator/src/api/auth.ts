import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { errorBody } from "./errors.js";

/**
 * Paths answered without a token: Kubernetes probes carry none, and a
 * Prometheus scrape usually carries none either (metrics hold counts and task
 * names, never parameters or results).
 */
const OPEN_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

// Hashing first makes the comparison constant-time whatever the lengths.
const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/** With a token configured, every other call needs `Authorization: Bearer <token>`, else 401. */
export function installAuth(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  const expected = digest(token);
  app.addHook("onRequest", async (request, reply) => {
    if (OPEN_PATHS.has(request.url.split("?")[0]!)) return;
    const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
    if (m && timingSafeEqual(digest(m[1]!.trim()), expected)) return;
    return reply
      .code(401)
      .header("www-authenticate", 'Bearer realm="offload"')
      .send(errorBody("OFFLOAD_UNAUTHORIZED", m ? "the bearer token is wrong" : "missing `Authorization: Bearer <token>` header"));
  });
}
