import type { RunState, TaskInfo } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The run API's Prometheus metrics, on a registry of its own (so two APIs in one process do not collide). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly #runsCreated = new Counter({
    name: "offload_runs_created_total",
    help: "Runs recorded by this replica, by task (cache hits included, idempotent replays not).",
    labelNames: ["task"] as const,
    registers: [this.registry],
  });
  readonly #events = new Counter({
    name: "offload_run_events_total",
    help: "Worker events handled by this replica, by type, and whether they changed the run (late or duplicated ones do not).",
    labelNames: ["type", "applied"] as const,
    registers: [this.registry],
  });
  readonly #runsDeleted = new Counter({
    name: "offload_runs_deleted_total",
    help: "Finished runs deleted by this replica because they were past retention, by state.",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });
  readonly #http = new Histogram({
    name: "offload_http_request_duration_seconds",
    help: "HTTP requests answered, by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly #scheduleTimes = new Counter({
    name: "offload_schedule_times_total",
    help:
      "Scheduled times of cron schedules, by task and outcome: started (a run), missed (skipped: no replica looked in time, " +
      "or past startingDeadlineSeconds), forbidden (skipped: concurrencyPolicy Forbid, the last run unfinished). Each time is " +
      "counted by the one replica that decided it: sum across replicas.",
    labelNames: ["task", "outcome"] as const,
    registers: [this.registry],
  });
  readonly #admitted = new Counter({
    name: "offload_runs_admitted_total",
    help: "Runs of limited tasks (a concurrency or rate limit) this replica's admission passes dispatched, by task.",
    labelNames: ["task"] as const,
    registers: [this.registry],
  });
  readonly #waiting = new Gauge({
    name: "offload_runs_waiting",
    help:
      "Runs of a limited task held in the run API (PENDING, not dispatched), by what they wait for (concurrency, rateLimit, or turn: a key " +
      "with room not reached yet), as of this replica's last admission pass of the task (cluster-wide; aggregate with max).",
    labelNames: ["task", "kind"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Exposes each task's load as gauges, read from `source` at every scrape:
   * `offload_task_backlog` is what an autoscaler (KEDA, or an HPA through a
   * Prometheus adapter) scales a TaskWorker on. Every replica reports the same
   * cluster-wide numbers, so aggregate them with `max`, not `sum`.
   */
  exposeTasks(source: () => Promise<TaskInfo[]>): void {
    let snapshot: Promise<TaskInfo[]> | undefined;
    // One read of the task list per scrape, shared by the three gauges.
    const tasks = (): Promise<TaskInfo[]> => {
      snapshot ??= source().finally(() => setImmediate(() => (snapshot = undefined)));
      return snapshot;
    };
    const gauge = (name: string, help: string, value: (t: TaskInfo) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["task"] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const t of await tasks()) this.set({ task: t.name }, value(t));
        },
      });
    };
    gauge("offload_task_backlog", "Runs of the task dispatched and not yet taken by a worker (cluster-wide).", (t) => t.backlog);
    gauge("offload_task_in_flight", "Runs of the task a worker has taken and not yet finished (cluster-wide).", (t) => t.inFlight);
    gauge("offload_task_workers", "Worker processes serving the task, heard from in the last 15 s.", (t) => t.workers.length);
  }

  /** Records what an admission pass of `task` did. */
  admissionPass(task: string, outcome: { dispatched: readonly unknown[]; waitingByKind: Readonly<Record<string, number>> }): void {
    if (outcome.dispatched.length) this.#admitted.inc({ task }, outcome.dispatched.length);
    for (const [kind, n] of Object.entries(outcome.waitingByKind)) this.#waiting.set({ task, kind }, n);
  }

  /** Counts scheduled times by what became of them (see the scheduler). */
  scheduleTimes(task: string, outcome: "started" | "missed" | "forbidden", count: number): void {
    this.#scheduleTimes.inc({ task, outcome }, count);
  }

  runCreated(task: string): void {
    this.#runsCreated.inc({ task });
  }

  runsDeleted(state: RunState, count: number): void {
    this.#runsDeleted.inc({ state }, count);
  }

  /** Counts a worker event handled, by type (the state events and PROGRESS). */
  eventHandled(event: { readonly type: string }, applied: boolean): void {
    this.#events.inc({ type: event.type, applied: String(applied) });
  }

  /** Times every answered request, and serves `GET /metrics`. */
  install(app: FastifyInstance): void {
    app.addHook("onResponse", async (request, reply) => {
      // The route's pattern, not the URL: one series per endpoint, not per run id.
      const route = request.routeOptions.url ?? "unmatched";
      this.#http.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
    app.get("/metrics", { schema: { summary: "Prometheus metrics (text exposition format)", tags: ["probes"] } }, async (_request, reply) => {
      return reply.type(this.registry.contentType).send(await this.registry.metrics());
    });
  }
}
