import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RunOutcome, ServeHooks } from "@offload/sdk/internal";

interface OutcomeSeries {
  readonly count: Counter.Internal;
  readonly duration: Histogram.Internal<string>;
}

interface TaskSeries {
  readonly started: Counter.Internal;
  readonly inFlight: Gauge.Internal<string>;
  readonly outcomes: Map<RunOutcome, OutcomeSeries>;
}

/** The worker's Prometheus metrics, and the serve() hooks that feed them. */
export interface WorkerMetrics {
  readonly registry: Registry;
  readonly hooks: ServeHooks;
  setReady(ready: boolean): void;
}

/** Builds a fresh registry (with Node's default process metrics) so that two workers in one process do not collide. */
export function createMetrics(concurrency: number): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const started = new Counter({ name: "offload_worker_runs_started_total", help: "Runs started, by task.", labelNames: ["task"], registers: [registry] });
  const completed = new Counter({ name: "offload_worker_runs_completed_total", help: "Runs completed, by task.", labelNames: ["task"], registers: [registry] });
  const failed = new Counter({ name: "offload_worker_runs_failed_total", help: "Runs failed for good (threw, timed out, bad input or result, with no retry left), by task.", labelNames: ["task"], registers: [registry] });
  const retried = new Counter({
    name: "offload_worker_runs_retried_total",
    help: "Tries that failed with retries left (the run awaits its next try), by task.",
    labelNames: ["task"],
    registers: [registry],
  });
  const cancelled = new Counter({ name: "offload_worker_runs_cancelled_total", help: "Runs cancelled while they ran, by task.", labelNames: ["task"], registers: [registry] });
  const abandoned = new Counter({
    name: "offload_worker_runs_abandoned_total",
    help: "Runs left unfinished when the worker stopped (they are redelivered), by task.",
    labelNames: ["task"],
    registers: [registry],
  });
  const inFlight = new Gauge({ name: "offload_worker_runs_in_flight", help: "Runs executing now, by task.", labelNames: ["task"], registers: [registry] });
  const duration = new Histogram({
    name: "offload_worker_run_duration_seconds",
    help: "How long runs took, by task and outcome.",
    labelNames: ["task", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  new Gauge({ name: "offload_worker_concurrency", help: "Most runs in flight in this process.", registers: [registry] }).set(concurrency);
  const ready = new Gauge({ name: "offload_worker_ready", help: "1 while consuming, 0 while starting or draining.", registers: [registry] });
  ready.set(0);

  // The series of each task and outcome, looked up once: prom-client hashes a label set on every inc() it is given one.
  const outcomeCounters: Record<RunOutcome, Counter> = { COMPLETED: completed, FAILED: failed, AWAITING_RETRY: retried, CANCELLED: cancelled, ABANDONED: abandoned };
  const tasks = new Map<string, TaskSeries>();
  const perTask = (task: string): TaskSeries => {
    let t = tasks.get(task);
    if (!t) {
      const outcomes = new Map<RunOutcome, OutcomeSeries>();
      for (const [outcome, counter] of Object.entries(outcomeCounters) as [RunOutcome, Counter][]) {
        outcomes.set(outcome, { count: counter.labels({ task }), duration: duration.labels({ task, outcome }) });
      }
      t = { started: started.labels({ task }), inFlight: inFlight.labels({ task }), outcomes };
      tasks.set(task, t);
    }
    return t;
  };

  return {
    registry,
    setReady: (r) => ready.set(r ? 1 : 0),
    hooks: {
      runStarted(run) {
        const t = perTask(run.task);
        t.started.inc();
        t.inFlight.inc();
      },
      runFinished(run) {
        const t = perTask(run.task);
        t.inFlight.dec();
        const outcome = t.outcomes.get(run.outcome);
        if (outcome) {
          outcome.duration.observe(run.durationSeconds);
          outcome.count.inc();
        }
      },
    },
  };
}
