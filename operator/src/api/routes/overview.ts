/**
 * Read-only views for the dashboard at /ui: an overview of the tasks (load,
 * recent outcomes, throughput over time, the workers) and a stream of every
 * run's changes, so a list of runs can update live.
 */
import { NamespaceSchema, TaskNameSchema, type Run, type RunProgressEvent } from "@offload/sdk/internal";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { countsByTask, throughput } from "../../store/overview.js";
import { openEventStream } from "../event-stream.js";
import type { RunNotifier } from "../notifier.js";
import { listTasks, type TaskListDeps } from "../task-list.js";
import { errorResponses } from "./schemas.js";

/**
 * What these routes ask of authorization (the run API's `Access`): the
 * namespace a listing is about and whether the caller may `list` runs there.
 */
export interface RunListAccess {
  listingNamespace(request: FastifyRequest, named: string | undefined): string | undefined;
  require(request: FastifyRequest, verb: "list", namespace: string): Promise<void>;
}

/** What the overview routes need. */
export interface OverviewRoutesDeps extends TaskListDeps {
  notifier: RunNotifier;
  /** Authorization; without it every caller that got past authentication sees every namespace. */
  access?: RunListAccess | undefined;
  /** Aborted at shutdown: every stream ends. */
  closing: AbortSignal;
  /** How often an idle stream sends a comment, so proxies keep it open, in ms. @defaultValue 15000 */
  keepAliveMs?: number;
}

const count = z.number().int().nonnegative();

export const OverviewQuerySchema = z.strictObject({
  windowSeconds: z.coerce.number().int().min(60).max(7 * 24 * 3600).default(3600).describe("How far back finished runs and throughput go."),
  buckets: z.coerce.number().int().min(1).max(240).default(30).describe("How many slices the throughput is cut into."),
  namespace: NamespaceSchema.optional().describe("Only runs of this namespace (the caller needs `list` on `runs` there)."),
});

export const OverviewSchema = z.object({
  generatedAt: z.iso.datetime(),
  windowSeconds: z.number().int(),
  bucketSeconds: z.number().int(),
  tasks: z.array(
    z.object({
      name: TaskNameSchema,
      backlog: count.describe("Runs dispatched and not yet taken by a worker."),
      inFlight: count.describe("Runs a worker has taken and not yet acknowledged."),
      workers: count.describe("Worker processes serving the task (heard from in the last 15 s)."),
      slots: count.describe("Runs those workers may have in flight at once (the sum of their concurrency)."),
      scheduled: count,
      pending: count,
      running: count,
      awaitingRetry: count,
      completed: count.describe("Runs that completed within the window."),
      failed: count.describe("Runs that failed within the window."),
      cancelled: count.describe("Runs cancelled within the window."),
    }),
  ),
  throughput: z
    .array(z.object({ at: z.iso.datetime(), completed: count, failed: count }))
    .describe("Runs finished per slice of `bucketSeconds`, oldest first."),
  workers: z.array(
    z.object({
      workerId: z.string(),
      tasks: z.array(TaskNameSchema),
      inFlight: count.describe("Runs in flight, as its last heartbeat said."),
      concurrency: count,
      lastSeenAt: z.iso.datetime().describe("Its last heartbeat."),
    }),
  ),
});
export type Overview = z.infer<typeof OverviewSchema>;

const EventsQuerySchema = z.strictObject({
  namespace: NamespaceSchema.optional().describe("Only runs of this namespace (the caller needs `list` on `runs` there)."),
  task: TaskNameSchema.optional().describe("Only runs of this task."),
});

export function registerOverviewRoutes(root: FastifyInstance, deps: OverviewRoutesDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();

  // The namespace a listing is about, checked: with Kubernetes auth, the caller's own unless named.
  const listable = async (request: FastifyRequest, named: string | undefined): Promise<string | undefined> => {
    const namespace = deps.access ? deps.access.listingNamespace(request, named) : named;
    if (namespace !== undefined) await deps.access?.require(request, "list", namespace);
    return namespace;
  };

  app.get(
    "/v1/overview",
    {
      schema: {
        summary: "The tasks at a glance: load, recent outcomes, throughput, workers",
        description:
          "For each task: its backlog and runs in flight (from its consumer), its workers, its unfinished runs by state, and the " +
          "runs that finished within the last `windowSeconds`. `throughput` counts completed and failed runs per slice of the " +
          "window. `workers` lists each worker process once, with the tasks it serves. What the dashboard's overview shows.",
        tags: ["dashboard"],
        querystring: OverviewQuerySchema,
        response: { 200: OverviewSchema, ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_FORBIDDEN", "OFFLOAD_UNAVAILABLE") },
      },
    },
    async (request) => {
      const { windowSeconds, buckets, namespace: named } = request.query;
      const namespace = await listable(request, named);
      const until = new Date();
      const since = new Date(until.getTime() - windowSeconds * 1000);
      const bucketSeconds = Math.max(1, Math.ceil(windowSeconds / buckets));
      const [counts, series, tasks] = await Promise.all([
        countsByTask(deps.db, { since, namespace }),
        throughput(deps.db, { since, until, bucketSeconds, namespace }),
        listTasks(deps),
      ]);
      const names = [...new Set([...tasks.map((t) => t.name), ...counts.keys()])].sort();
      const byName = new Map(tasks.map((t) => [t.name, t]));
      const workers = new Map<string, Overview["workers"][number]>();
      for (const t of tasks) {
        for (const w of t.workers) {
          // A worker's heartbeat is sent per task it serves; each carries its whole load, so the newest one counts.
          const seen = workers.get(w.workerId);
          if (!seen) workers.set(w.workerId, { workerId: w.workerId, tasks: [t.name], inFlight: w.inFlight, concurrency: w.concurrency, lastSeenAt: w.lastSeenAt });
          else {
            seen.tasks.push(t.name);
            if (w.lastSeenAt > seen.lastSeenAt) Object.assign(seen, { inFlight: w.inFlight, concurrency: w.concurrency, lastSeenAt: w.lastSeenAt });
          }
        }
      }
      return {
        generatedAt: until.toISOString(),
        windowSeconds,
        bucketSeconds,
        tasks: names.map((name) => {
          const t = byName.get(name);
          const c = counts.get(name);
          return {
            name,
            backlog: t?.backlog ?? 0,
            inFlight: t?.inFlight ?? 0,
            workers: t?.workers.length ?? 0,
            slots: t?.workers.reduce((n, w) => n + w.concurrency, 0) ?? 0,
            scheduled: c?.SCHEDULED ?? 0,
            pending: c?.PENDING ?? 0,
            running: c?.RUNNING ?? 0,
            awaitingRetry: c?.AWAITING_RETRY ?? 0,
            completed: c?.COMPLETED ?? 0,
            failed: c?.FAILED ?? 0,
            cancelled: c?.CANCELLED ?? 0,
          };
        }),
        throughput: series,
        workers: [...workers.values()].sort((a, b) => a.workerId.localeCompare(b.workerId)),
      };
    },
  );

  app.get(
    "/v1/events",
    {
      schema: {
        summary: "Follow every run's changes as server-sent events",
        description:
          "A `text/event-stream` of `event: run` blocks, `data:` the run as JSON, after each change this API process records " +
          "(a run started, finished, retried, cancelled, or reported progress), and after a progress report also `event: progress` " +
          "(`data:` `{runId, progress}`). With several API replicas each records a share " +
          "of the changes: re-read the list now and then (the dashboard does every few seconds). A comment every 15 s keeps idle " +
          "connections open. The stream ends at the API's shutdown.",
        tags: ["dashboard"],
        querystring: EventsQuerySchema,
        response: {
          200: { description: "The event stream.", content: { "text/event-stream": { schema: z.string().describe("`event: run` / `data: <Run as JSON>` blocks.") } } },
          ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_FORBIDDEN", "OFFLOAD_UNAVAILABLE"),
        },
      },
    },
    async (request, reply) => {
      const { task, namespace: named } = request.query;
      const namespace = await listable(request, named);
      const res = openEventStream(reply);
      res.write("retry: 2000\n\n");
      const unwatch = deps.notifier.watchAll((run: Run) => {
        if (task !== undefined && run.task !== task) return;
        if (namespace !== undefined && run.namespace !== namespace) return;
        res.write(`event: run\ndata: ${JSON.stringify(run)}\n\n`);
        // A RUNNING run with progress was changed by a progress report (a new try's RUNNING clears it): say so on its own too.
        if (run.state === "RUNNING" && run.progress) {
          const data: RunProgressEvent = { runId: run.id, progress: run.progress };
          res.write(`event: progress\ndata: ${JSON.stringify(data)}\n\n`);
        }
      });
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.keepAliveMs ?? 15_000);
      await new Promise<void>((resolve) => {
        const end = (): void => {
          deps.closing.removeEventListener("abort", end);
          resolve();
        };
        res.once("close", end);
        deps.closing.addEventListener("abort", end, { once: true });
        if (deps.closing.aborted) end();
      });
      clearInterval(keepAlive);
      unwatch();
      res.end();
    },
  );
}
