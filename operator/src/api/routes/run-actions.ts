import type { KV } from "@nats-io/kv";
import { RunSchema } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Logger } from "pino";
import { cancelRun, retryRun } from "../../dispatch/lifecycle.js";
import type { Db } from "../../store/db.js";
import { getRun } from "../../store/runs.js";
import { ApiHttpError } from "../errors.js";
import type { RunNotifier } from "../notifier.js";
import type { Access } from "../auth/index.js";
import { ACCESS_ERRORS, IdParams, authorizeRun, notFound } from "./runs.js";
import { errorResponses } from "./schemas.js";
import type { DispatchBus } from "../../dispatch/publisher.js";
import type { Admission } from "../../dispatch/admission.js";

/** What the run action routes need. */
export interface RunActionDeps extends DispatchBus {
  db: Db;
  cancellations: KV;
  notifier: RunNotifier;
  log: Logger;
  access: Access;
  /** Admission of limited tasks: a retried run of one waits for it. */
  admission?: Admission | undefined;
}

/** `POST /v1/runs/:id/cancel` and `POST /v1/runs/:id/retry`: an operator changing a run's course. */
export function registerRunActionRoutes(root: FastifyInstance, deps: RunActionDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post(
    "/v1/runs/:id/cancel",
    {
      schema: {
        summary: "Cancel a run that has not finished",
        description:
          "A run no worker has started (SCHEDULED, PENDING, AWAITING_RETRY) is CANCELLED at once: 200 with it; no worker will " +
          "start it. A RUNNING run is asked to stop: 202 with it as it is; its worker aborts the run's signal and the run " +
          "becomes CANCELLED when the worker says so. Cancelling a CANCELLED run answers 200 again; a COMPLETED or FAILED " +
          "run answers 409 `OFFLOAD_RUN_FINISHED`.",
        tags: ["runs"],
        params: IdParams,
        response: { 200: RunSchema, 202: RunSchema, ...errorResponses("OFFLOAD_RUN_NOT_FOUND", "OFFLOAD_RUN_FINISHED", ...ACCESS_ERRORS) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // RBAC's verb for ending something is delete.
      await authorizeRun(deps, request, id, "delete");
      const out = await cancelRun(deps, id);
      switch (out.kind) {
        case "not-found":
          throw notFound(id);
        case "finished":
          throw new ApiHttpError("OFFLOAD_RUN_FINISHED", `run ${id} already finished ${out.run.state}; only an unfinished run can be cancelled`, {
            runId: id,
          });
        case "cancelled":
          deps.notifier.notify(out.run);
          return reply.code(200).send(out.run);
        case "requested":
          request.log.info({ runId: id }, "cancellation requested of a running run");
          return reply.code(202).send(out.run);
      }
    },
  );

  app.post(
    "/v1/runs/:id/retry",
    {
      schema: {
        summary: "Run a FAILED run again",
        description:
          "Dispatches a FAILED run once more under the same id: it becomes PENDING with its error cleared, and `attempts` " +
          "counts on from where it stopped. 202 with the run. Any other state answers 409 `OFFLOAD_RUN_NOT_RETRYABLE`.",
        tags: ["runs"],
        params: IdParams,
        response: { 202: RunSchema, ...errorResponses("OFFLOAD_RUN_NOT_FOUND", "OFFLOAD_RUN_NOT_RETRYABLE", ...ACCESS_ERRORS) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // Retrying changes the run in place: RBAC's update.
      await authorizeRun(deps, request, id, "update");
      let run;
      try {
        run = await retryRun(deps, id);
      } catch (err) {
        request.log.warn({ err, runId: id }, "could not dispatch the retry");
        throw new ApiHttpError("OFFLOAD_UNAVAILABLE", `could not dispatch run ${id} again (NATS or the database did not answer); nothing changed, try again`, {
          runId: id,
        });
      }
      if (!run) {
        const current = await getRun(deps.db, id);
        if (!current) throw notFound(id);
        throw new ApiHttpError("OFFLOAD_RUN_NOT_RETRYABLE", `run ${id} is ${current.state}; only a FAILED run can be retried`, { runId: id });
      }
      deps.notifier.notify(run);
      return reply.code(202).send(run);
    },
  );
}
