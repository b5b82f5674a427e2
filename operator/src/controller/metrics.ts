import type { TaskInfo } from "@offload/sdk/internal";
import { Gauge, type Registry } from "prom-client";
import { backlogOf } from "./autoscale.js";
import { poolTasks } from "./autoscaler.js";

/** A TaskWorker as the metrics need it. */
export interface TaskWorkerSample {
  namespace: string;
  name: string;
  /** `spec.tasks`, if listed. */
  tasks: readonly string[] | undefined;
  /** `status.autoscaling.desiredReplicas`, with `spec.autoscaling` set. */
  desiredReplicas: number | undefined;
}

/** Where the per-TaskWorker metrics are read from at each scrape. */
export interface TaskWorkerMetricsSource {
  /** The TaskWorkers in the informer's cache (none while not leading). */
  taskWorkers(): readonly TaskWorkerSample[];
  /** The run API's task list as the task watch last saw it; undefined while it cannot tell. */
  taskList(): readonly TaskInfo[] | undefined;
}

/**
 * Per-TaskWorker gauges on the controller's `/metrics`, for people who scale
 * with KEDA or an HPA instead of `spec.autoscaling`:
 * `offload_taskworker_backlog{namespace, taskworker}` is the load the
 * built-in autoscaler sizes the pool on (runs waiting plus running of its
 * tasks; a task two TaskWorkers serve counts whole in each), and
 * `offload_taskworker_desired_replicas` the size the autoscaler last decided.
 * Only the leader has TaskWorkers to report (a standby's cache is empty), so
 * aggregate replicas with `max`. Nothing is reported while the run API cannot
 * tell the load: a missing series, not a false 0 a scaler would act on.
 */
export function exposeTaskWorkerMetrics(registry: Registry, source: TaskWorkerMetricsSource): void {
  const labelNames = ["namespace", "taskworker"] as const;
  new Gauge({
    name: "offload_taskworker_backlog",
    help: "Runs of the TaskWorker's tasks waiting or running, as its autoscaler counts them (leader only).",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const list = source.taskList();
      if (!list) return;
      for (const tw of source.taskWorkers()) {
        const names = poolTasks(tw.name, tw.tasks, list);
        this.set({ namespace: tw.namespace, taskworker: tw.name }, names ? backlogOf(list, names) : 0);
      }
    },
  });
  new Gauge({
    name: "offload_taskworker_desired_replicas",
    help: "The size the autoscaler last decided for the TaskWorker (with spec.autoscaling; leader only).",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const tw of source.taskWorkers()) {
        if (tw.desiredReplicas !== undefined) this.set({ namespace: tw.namespace, taskworker: tw.name }, tw.desiredReplicas);
      }
    },
  });
}
