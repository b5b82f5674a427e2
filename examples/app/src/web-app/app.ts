/**
 * The example web app: a request handler that hands slow work to Offload and
 * answers at once, and a status endpoint that reports the run's progress.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { ApiError, defaultClient, type OffloadClient } from "@offload/sdk";
import { z } from "zod";
import { sendWelcomeEmail, textReport } from "../tasks.js";

const JobBody = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("welcome-email"), to: z.email(), name: z.string().min(1) }),
  z.object({ kind: z.literal("text-report"), text: z.string(), top: z.number().int().optional() }),
]);

/** Builds the app. `client` reads run status (the default client, from the environment, if not given). */
export function buildApp(options: { client?: OffloadClient; logger?: boolean } = {}): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? false });

  app.post("/jobs", async (req, reply) => {
    const body = JobBody.safeParse(req.body);
    if (!body.success) {
      return reply.code(400).send({ error: "invalid job", issues: body.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
    }
    const job = body.data;
    // The only line that matters: the work is recorded and dispatched, not done here.
    const run =
      job.kind === "welcome-email"
        ? await sendWelcomeEmail.delay({ to: job.to, name: job.name })
        : await textReport.delay({ text: job.text, ...(job.top ? { top: job.top } : {}) });
    return reply.code(202).send({ id: run.id, task: run.task, status: `/jobs/${run.id}/status` });
  });

  app.get<{ Params: { id: string } }>("/jobs/:id/status", async (req, reply) => {
    try {
      const run = await (options.client ?? defaultClient()).getRun(req.params.id);
      return { id: run.id, task: run.task, state: run.state, attempts: run.attempts, result: run.result, error: run.error };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return reply.code(404).send({ error: `no job ${req.params.id}` });
      throw err;
    }
  });

  return app;
}
