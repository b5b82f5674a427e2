// The controller's per-TaskWorker gauges: what KEDA or an HPA scales on instead of spec.autoscaling.
import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import type { TaskInfo } from "@offload/sdk";
import { exposeTaskWorkerMetrics, type TaskWorkerSample } from "../../operator/src/controller/metrics.js";

const task = (name: string, backlog: number, inFlight: number, workers: string[] = []): TaskInfo => ({
  name,
  backlog,
  inFlight,
  workers: workers.map((workerId) => ({ workerId, concurrency: 2, inFlight: 0, lastSeenAt: new Date().toISOString() })),
});

describe("offload_taskworker_backlog", () => {
  it("is waiting plus running of each TaskWorker's tasks (listed, or found from its pods' worker ids), whole in each pool that serves a task", async () => {
    const registry = new Registry();
    let list: TaskInfo[] | undefined = [task("a", 5, 2), task("b", 1, 0), task("c", 4, 3, ["implicit-7d9f8c6b5-x2x9z"])];
    const taskWorkers: TaskWorkerSample[] = [
      { namespace: "ns", name: "both", tasks: ["a", "b"], desiredReplicas: 3 },
      { namespace: "ns", name: "only-a", tasks: ["a"], desiredReplicas: undefined },
      { namespace: "other", name: "implicit", tasks: undefined, desiredReplicas: undefined },
      { namespace: "other", name: "idle", tasks: undefined, desiredReplicas: 0 },
    ];
    exposeTaskWorkerMetrics(registry, { taskWorkers: () => taskWorkers, taskList: () => list });
    const text = await registry.metrics();
    expect(text).toContain('offload_taskworker_backlog{namespace="ns",taskworker="both"} 8');
    expect(text).toContain('offload_taskworker_backlog{namespace="ns",taskworker="only-a"} 7');
    expect(text).toContain('offload_taskworker_backlog{namespace="other",taskworker="implicit"} 7');
    expect(text).toContain('offload_taskworker_backlog{namespace="other",taskworker="idle"} 0');
    expect(text).toContain('offload_taskworker_desired_replicas{namespace="ns",taskworker="both"} 3');
    expect(text).not.toContain('offload_taskworker_desired_replicas{namespace="ns",taskworker="only-a"}');

    // The run API cannot tell: no backlog series at all (a scaler must not read a false 0).
    list = undefined;
    expect(await registry.metrics()).not.toContain("offload_taskworker_backlog{");
  });
});
