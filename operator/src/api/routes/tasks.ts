import type { JetStreamManager } from "@nats-io/jetstream";
import { ListTasksResponseSchema, type TaskInfo } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { consumerLoads } from "../../dispatch/backlog.js";
import type { WorkerDirectory } from "../../dispatch/heartbeats.js";
import type { Db } from "../../store/db.js";
import { tasksWithRuns } from "../../store/tasks.js";
import { errorResponses } from "./schemas.js";

/** `GET /v1/tasks`: the tasks known from runs and from worker heartbeats, with their load. */
export function registerTaskRoutes(root: FastifyInstance, deps: { db: Db; jsm: JetStreamManager; workers: WorkerDirectory }): void {
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
      const [fromRuns, loads] = await Promise.all([tasksWithRuns(deps.db), consumerLoads(deps.jsm)]);
      const workers = deps.workers.current();
      const names = [...new Set([...fromRuns.keys(), ...workers.keys(), ...loads.keys()])].sort();
      const tasks: TaskInfo[] = names.map((name) => {
        const load = loads.get(name);
        return {
          name,
          backlog: load?.backlog ?? fromRuns.get(name) ?? 0,
          inFlight: load?.inFlight ?? 0,
          workers: workers.get(name) ?? [],
        };
      });
      return { tasks };
    },
  );
}
