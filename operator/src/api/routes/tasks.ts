import { ListTasksResponseSchema } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { listTasks, type TaskListDeps } from "../task-list.js";
import { errorResponses } from "./schemas.js";

/** `GET /v1/tasks`: the tasks known from runs and from worker heartbeats, with their load. */
export function registerTaskRoutes(root: FastifyInstance, deps: TaskListDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/tasks",
    {
      schema: {
        summary: "List tasks with their backlog and workers",
        description:
          "Every task that has runs or a worker serving it, by name. `backlog` and `inFlight` come from the task's shared " +
          "consumer; before any worker made one, `backlog` counts the task's PENDING runs. A task no worker serves has " +
          "`workers: []`.",
        tags: ["tasks"],
        response: { 200: ListTasksResponseSchema, ...errorResponses() },
      },
    },
    async () => {
      const tasks = await listTasks(deps);
      return { tasks };
    },
  );
}
