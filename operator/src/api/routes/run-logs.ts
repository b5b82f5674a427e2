import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { RunLogsResponseSchema } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { readRunLogs } from "../../dispatch/logs.js";
import type { Db } from "../../store/db.js";
import { getRun } from "../../store/runs.js";
import type { Access } from "../auth/index.js";
import { ACCESS_ERRORS, IdParams, authorizeRun, notFound } from "./runs.js";
import { errorResponses } from "./schemas.js";

/** `GET /v1/runs/:id/logs`: what a run logged through `ctx.log`. */
export function registerRunLogRoutes(root: FastifyInstance, deps: { db: Db; js: JetStreamClient; jsm: JetStreamManager; access: Access }): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/runs/:id/logs",
    {
      schema: {
        summary: "Get a run's log lines",
        description:
          "Every attempt's lines, oldest first, as stored when the call began. The newest lines of a run are kept (at most " +
          "`MAX_LOG_LINES_PER_RUN`, for a week); `truncated` says older ones were dropped.",
        tags: ["runs"],
        params: IdParams,
        response: { 200: RunLogsResponseSchema, ...errorResponses("OFFLOAD_RUN_NOT_FOUND", ...ACCESS_ERRORS) },
      },
    },
    async (request) => {
      const { id } = request.params;
      await authorizeRun(deps, request, id, "get");
      if (deps.access.mode !== "kubernetes" && !(await getRun(deps.db, id))) throw notFound(id);
      return readRunLogs(deps.js, deps.jsm, id);
    },
  );
}
