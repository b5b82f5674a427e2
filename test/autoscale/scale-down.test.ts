// Autoscaling end to end: real worker processes in the stand-in's pods, real
// nats-server, PostgreSQL, run API and controller. A scale-down spares the pod
// that is running work (pod-deletion-cost, honoured by the stand-in's
// ReplicaSet controller as the real one does), no run is redelivered; and a
// TaskWorker at zero replicas gets a pod when a run is delayed.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Run } from "@offload/sdk";
import { isPodReady, type Obj } from "../k8s/index.js";
import { autoscaledTaskWorker, metaOf, NS, podName, startAutoscaleWorld, untilKube, type AutoscaleWorld } from "./support.js";

const COST = "controller.kubernetes.io/pod-deletion-cost";

describe("autoscaling end to end: real workers in the stand-in's pods", () => {
  let world: AutoscaleWorld;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-autoscale-"));
    world = await startAutoscaleWorld();
  });
  afterAll(async () => {
    if (process.env.SHOW_CONTROLLER_LOG) process.stderr.write(`--- controller\n${world?.controller.output().slice(-8000)}\n`);
    await world?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The TaskWorker's live pods once there are `n`, all Ready. */
  const readyPods = (tw: string, n: number): Promise<Obj[]> =>
    untilKube(world.fake, `${n} ready pods of ${tw}`, () => {
      const pods = world.livePods(tw);
      return pods.length === n && pods.every(isPodReady) ? pods : undefined;
    }, 60_000);

  /** Waits, on the run's event stream, until it is in `state`. */
  async function untilState(run: Run, state: string): Promise<Run> {
    for await (const r of world.stack.client.watchRun(run.id)) if (r.state === state) return r;
    throw new Error(`run ${run.id} ended without being ${state}: ${JSON.stringify(await world.stack.client.getRun(run.id))}`);
  }

  it("from zero: a TaskWorker at 0 replicas gets a pod when a run is delayed, the run completes there, and the pool goes back to 0", async () => {
    world.fake.create(autoscaledTaskWorker("zero", { tasks: ["as-quick"], concurrency: 2, autoscaling: { minReplicas: 0, maxReplicas: 2, targetBacklogPerReplica: 5, scaleDownDelaySeconds: 1 } }));
    await untilKube(world.fake, "the Deployment of zero at 0 replicas, with no pod", () => {
      const spec = world.fake.get("deployments", NS, "zero")?.spec as Obj | undefined;
      return spec?.replicas === 0 && world.fake.list("pods", NS).every((p) => !podName(p).startsWith("zero-"));
    });

    const run = await world.stack.client.createRun({ task: "as-quick", parameters: { n: 7 } });
    const [pod] = await readyPods("zero", 1);
    const result = await world.stack.client.getResult(run.id, 30);
    expect(result).toMatchObject({ done: true, result: { n: 7, worker: podName(pod!) } });
    expect(await world.stack.client.getRun(run.id)).toMatchObject({ attempts: 1, workerId: podName(pod!) });
    // The worker's id is its pod's name, from the Downward API, as the controller's Deployment asks.
    expect(world.pods.get(podName(pod!))?.env.OFFLOAD_WORKER_ID).toBe(podName(pod!));

    // Idle for the scale-down delay: back to zero, the pod's worker stopped cleanly.
    await untilKube(world.fake, "zero's pods to be gone", () => world.fake.list("pods", NS).every((p) => !podName(p).startsWith("zero-")), 30_000);
    expect(world.pods.get(podName(pod!))?.exit).toBe(0);
  });

  it("3 → 1 with long runs on one pod and the others idle: the busy pod survives, no run is redelivered, every run completes", async () => {
    world.fake.create(autoscaledTaskWorker("busy", { tasks: ["as-long"], concurrency: 3, autoscaling: { minReplicas: 1, maxReplicas: 3, targetBacklogPerReplica: 1, scaleDownDelaySeconds: 2 } }));
    const [first] = await readyPods("busy", 1);
    const busy = podName(first!);

    // Record each pod's deletion cost at the moment it is marked for deletion.
    const costAtDeletion = new Map<string, string | undefined>();
    const unobserve = world.fake.observe((e) => {
      const m = metaOf(e.object);
      if (e.resource.plural !== "pods" || !String(m.name).startsWith("busy-") || m.deletionTimestamp === undefined || costAtDeletion.has(String(m.name))) return;
      costAtDeletion.set(String(m.name), (m.annotations as Record<string, string> | undefined)?.[COST]);
    });
    try {
      // Three long runs while `busy` is the only pod: it takes all three (concurrency 3). Waiting plus running is 3,
      // one per replica: the pool grows to 3, and the two new pods find nothing to do.
      const releases = [1, 2, 3].map((i) => join(dir, `release-${i}`));
      const runs = await world.stack.client.createRuns(releases.map((release) => ({ task: "as-long", parameters: { release } })));
      const running = await Promise.all(runs.map((r) => untilState(r, "RUNNING")));
      expect(running.map((r) => r.workerId)).toEqual([busy, busy, busy]);
      const three = await readyPods("busy", 3);
      const idle = three.map(podName).filter((n) => n !== busy);
      expect(idle).toHaveLength(2);

      // Two runs finish: one still runs on `busy`, so the pool should shrink to 1 after the delay; the idle pods go.
      await Promise.all([writeFile(releases[0]!, ""), writeFile(releases[1]!, "")]);
      await Promise.all(runs.slice(0, 2).map((r) => untilState(r, "COMPLETED")));
      const [survivor] = await untilKube(world.fake, "busy's pods to be down to 1, the others gone", () => {
        const all = world.fake.list("pods", NS).filter((p) => podName(p).startsWith("busy-"));
        return all.length === 1 ? all : undefined;
      }, 60_000);
      expect(podName(survivor!)).toBe(busy);
      expect([...costAtDeletion.keys()].sort()).toEqual([...idle].sort());
      // The idle pods were marked cheaper than the busy one before the ReplicaSet chose.
      for (const name of idle) expect(Number(costAtDeletion.get(name) ?? 0)).toBeLessThan(Number((metaOf(survivor!).annotations as Record<string, string>)[COST]));
      // The idle pods' workers had nothing to drain: SIGTERM, a clean exit.
      for (const name of idle) expect(world.pods.get(name)?.exit).toBe(0);

      // The controller's /metrics says the same load per TaskWorker (for KEDA or an HPA): one run running.
      const port = /"port":(\d+)[^\n]*offload-controller started/.exec(world.controller.output())?.[1];
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`offload_taskworker_backlog{namespace="${NS}",taskworker="busy"} 1`);
      expect(metrics).toContain(`offload_taskworker_desired_replicas{namespace="${NS}",taskworker="busy"} 1`);

      // The last run was never interrupted: it completes on the pod that took it, on its first attempt.
      await writeFile(releases[2]!, "");
      await untilState(runs[2]!, "COMPLETED");
      for (const r of runs) expect(await world.stack.client.getRun(r.id)).toMatchObject({ state: "COMPLETED", attempts: 1, workerId: busy });
      expect(world.fake.get("taskworkers", NS, "busy")?.spec).toMatchObject({ replicas: 1 });
    } finally {
      unobserve();
    }
  });
});
