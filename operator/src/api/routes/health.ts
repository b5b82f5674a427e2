import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorBodySchema } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { z } from "zod";
import type { NatsLink } from "../../dispatch/connection.js";
import type { Db } from "../../store/db.js";
import { errorBody } from "../errors.js";

const Ok = z.object({ ok: z.literal(true) });

const within = <T>(ms: number, p: Promise<T>): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

/** What the probes need. */
export interface HealthDeps {
  db: Db;
  nc: NatsConnection;
  link: NatsLink;
  log: Logger;
}

/**
 * `/healthz` (the process answers, and no embedded database failed for good)
 * and `/readyz` (the database and NATS answer too). Neither needs a token. A change of readiness is logged once, each way,
 * not on every probe.
 */
export function registerHealthRoutes(root: FastifyInstance, deps: HealthDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  let wasReady = true;
  app.get(
    "/healthz",
    {
      schema: {
        summary: "Liveness: the process is up (and its embedded database, if any, usable)",
        tags: ["probes"],
        response: { 200: Ok, 503: ErrorBodySchema.describe("`OFFLOAD_UNAVAILABLE`: the embedded database failed for good; restart the process.") },
      },
    },
    async (_request, reply) => {
      // Only a restart mends a broken embedded database: failing liveness is how Kubernetes is asked for one.
      const failure = deps.db.failure;
      if (failure) return reply.code(503).send(errorBody("OFFLOAD_UNAVAILABLE", failure.message));
      return reply.code(200).send({ ok: true as const });
    },
  );
  app.get(
    "/readyz",
    {
      schema: {
        summary: "Readiness: the database and NATS answer",
        tags: ["probes"],
        response: { 200: Ok, 503: ErrorBodySchema.describe("`OFFLOAD_UNAVAILABLE`: the message says which dependency and why.") },
      },
    },
    async (_request, reply) => {
      const [database, nats] = await Promise.all([
        within(2000, deps.db.query("SELECT 1")).then(() => undefined, (err: Error) => `database: ${err.message}`),
        (deps.nc.isClosed()
          ? Promise.reject(new Error("connection closed"))
          : deps.link.connected
            ? within(2000, deps.nc.rtt())
            : Promise.reject(new Error("disconnected, reconnecting"))
        ).then(
          () => undefined,
          (err: Error) => `nats: ${err.message}`,
        ),
      ]);
      const problems = [database, nats].filter(Boolean);
      const ready = problems.length === 0;
      if (ready !== wasReady) {
        wasReady = ready;
        if (ready) deps.log.info("ready again: the database and NATS answer");
        else deps.log.warn({ problems }, "not ready: a dependency does not answer");
      }
      if (ready) return reply.code(200).send({ ok: true as const });
      return reply.code(503).send(errorBody("OFFLOAD_UNAVAILABLE", `not ready: ${problems.join("; ")}`));
    },
  );
}
