import { z } from "zod";
import { ListTasksResponseSchema } from "./run.js";

/** Longest `wait` of `GET /v1/tasks`, in seconds. */
export const MAX_TASK_LIST_WAIT_SECONDS = 60;

/**
 * Query of `GET /v1/tasks`. With `since` (the `version` of an earlier answer)
 * the call long-polls: it answers at once if the load differs from that
 * version, else when it changes, or after `wait` seconds with the same one.
 */
export const ListTasksQuerySchema = z.strictObject({
  wait: z.coerce
    .number()
    .min(0)
    .max(MAX_TASK_LIST_WAIT_SECONDS)
    .default(0)
    .describe("Seconds to wait for the load to differ from `since` (0: answer at once)."),
  since: z
    .string()
    .max(64)
    .optional()
    .describe("The `version` of the answer the caller has: the call waits while the load is still that one."),
});
export type ListTasksQuery = z.infer<typeof ListTasksQuerySchema>;

/** The answer of `GET /v1/tasks`: the tasks and a version of their load. */
export const TaskListSchema = ListTasksResponseSchema.extend({
  version: z
    .string()
    .describe(
      "Names the load (each task's backlog and in-flight count, each worker's concurrency and in-flight count; not the " +
        "heartbeat times). Equal versions mean equal loads, on every replica: pass it as `since` to wait for a change.",
    ),
});
export type TaskList = z.infer<typeof TaskListSchema>;
