import type { RunEvent } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
  readonly #http = new Histogram({
    name: "offload_http_request_duration_seconds",
    help: "HTTP requests answered, by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  runCreated(task: string): void {
    this.#runsCreated.inc({ task });
  }

  eventHandled(event: RunEvent, applied: boolean): void {
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
