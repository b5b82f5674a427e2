import fastifyRateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RateLimitConfig } from "../config/api.js";
import { callerOf, isOpenPath } from "./auth/index.js";
import { ApiHttpError } from "./errors.js";

/**
 * Who a request counts against: the authenticated Kubernetes identity (one
 * app's pods share their ServiceAccount, so they share a limit wherever they
 * run), else the client address.
 */
export function rateLimitKey(request: FastifyRequest): string {
  const caller = callerOf(request);
  return caller?.kind === "kubernetes" ? `user:${caller.username}` : `ip:${request.ip}`;
}

/**
 * Per-caller limits (OFFLOAD_RATE_LIMIT_PER_SECOND): `limit.max` requests per
 * `limit.windowMs`, counted in this process's memory (each replica counts its
 * own). Past it, 429 `OFFLOAD_RATE_LIMITED` with `Retry-After` (seconds until
 * the window ends). The probes and /metrics are never limited. Runs after
 * authentication (route-level hooks follow the app's), so the identity is known.
 */
export async function installRateLimit(app: FastifyInstance, limit: RateLimitConfig | undefined): Promise<void> {
  if (!limit) return;
  await app.register(fastifyRateLimit, {
    max: limit.max,
    timeWindow: limit.windowMs,
    keyGenerator: rateLimitKey,
    allowList: (request) => isOpenPath(request),
    // A bounded number of callers is remembered (lru), so a flood of addresses cannot grow memory without end.
    cache: 10_000,
    errorResponseBuilder: (_request, context) =>
      new ApiHttpError(
        "OFFLOAD_RATE_LIMITED",
        `more than ${context.max} requests in ${limit.windowMs / 1000} s from this caller; wait ${context.after} (Retry-After) and send fewer requests, ` +
          "e.g. many runs in one POST /v1/runs/batch",
      ),
  });
}
