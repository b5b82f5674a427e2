import { ListTasksQuerySchema, TaskListSchema } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { TaskLoadWatch } from "../task-load.js";
import { listTasks, type TaskListDeps } from "../task-list.js";
import { errorResponses } from "./schemas.js";

/** What `GET /v1/tasks` needs beyond the task list's sources. */
export interface TaskRouteDeps extends TaskListDeps {
  /** The shared, rate-limited list that long-polls wait on. */
  watch: TaskLoadWatch;
  /** Aborted when the API shuts down: long-polls answer at once. */
  closing: AbortSignal;
}

/** `GET /v1/tasks`: the tasks known from runs, worker heartbeats and registrations, with their load and definition; long-polls on a change of load. */
export function registerTaskRoutes(root: FastifyInstance, deps: TaskRouteDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/tasks",
    {
      schema: {
        summary: "List tasks with their backlog, workers and definitions; long-poll for a change of load",
        description:
          "Every task that has runs, a worker serving it or a registered definition, by name. `definition` is what the last " +
          "worker to register the task said of it (input schema, limits, retries, timeout), kept while no worker runs. " +
          "`backlog` and `inFlight` come from the task's shared " +
          "consumer; before any worker made one, `backlog` counts the task's PENDING runs. A task no worker serves has " +
          "`workers: []`; each worker's `inFlight` comes from its heartbeats (sent every 5 s, and within a fraction of a " +
          "second of a change of its in-flight count).\n\n" +
          "`version` names the load. Pass it back as `since` with `wait` (seconds) to long-poll: the answer comes at once " +
          "if the load is already another, else as soon as it changes (runs dispatched by any replica, a worker taking or " +
          "finishing one), or after `wait` seconds with the same version. Waiting callers share one read of the load at " +
          "most every 250 ms, however many they are. This is how the controller learns of backlog without polling.",
        tags: ["tasks"],
        querystring: ListTasksQuerySchema,
        response: { 200: TaskListSchema, ...errorResponses("OFFLOAD_VALIDATION") },
      },
    },
    async (request, reply) => {
      const { since, wait } = request.query;
      if (since === undefined && wait === 0) {
        const readAt = Date.now();
        return deps.watch.observe(await listTasks(deps), readAt);
      }
      // The client going away ends the wait, as does shutdown.
      const gone = new AbortController();
      reply.raw.once("close", () => gone.abort());
      return deps.watch.waitForChange(since, wait * 1000, AbortSignal.any([gone.signal, deps.closing]));
    },
  );
}
