import { describe, expect, it } from "vitest";
import type { TaskInfo } from "@offload/sdk/internal";
import { backlogOf, decide, deletionCosts, type Recommendation } from "../../operator/src/controller/autoscale.js";
import { pino } from "pino";
import { Autoscaler, POD_DELETION_COST, poolTasks, type TaskSnapshot } from "../../operator/src/controller/autoscaler.js";
import type { EventRecorder } from "../../operator/src/controller/events.js";
import type { Kube } from "../../operator/src/controller/kube.js";
import type { Autoscaling, TaskWorker } from "../../operator/src/crds/schemas.js";

const S = 1000;
const auto = (a: Partial<Autoscaling> = {}): Autoscaling => ({ minReplicas: 0, maxReplicas: 10, targetBacklogPerReplica: 20, scaleDownDelaySeconds: 60, ...a });

/** Walks the decision through time as the controller would: each step feeds back the history and the new size. */
function pool(a: Autoscaling, replicas = 0, concurrency = 4) {
  let history: Recommendation[] = [];
  let current = replicas;
  return {
    get replicas() {
      return current;
    },
    at(seconds: number, backlog: number | undefined) {
      const d = decide({ autoscaling: a, concurrency, current, backlog, history, now: seconds * S });
      history = d.history;
      current = d.desired;
      return d;
    },
  };
}

describe("the autoscaler's decision (pure, fake clock)", () => {
  it("sizes to ceil(backlog / target) within min and max, up at once, 0 → 1 on the first run", () => {
    const p = pool(auto());
    expect(p.at(0, 0).desired).toBe(0);
    expect(p.at(1, 1)).toMatchObject({ desired: 1, wanted: 1, limit: undefined, reason: "backlog 1, 20 per replica wants 1" });
    expect(p.at(2, 57).desired).toBe(3);
    const atMax = p.at(3, 900);
    expect(atMax).toMatchObject({ desired: 10, wanted: 45, limit: "maxReplicas" });
    expect(atMax.reason).toBe("at maxReplicas: backlog 900, 20 per replica wants 45");
  });

  it("targetBacklogPerReplica defaults to the pool's concurrency", () => {
    const d = decide({ autoscaling: auto({ targetBacklogPerReplica: undefined }), concurrency: 8, current: 0, backlog: 17, history: [], now: 0 });
    expect(d).toMatchObject({ desired: 3, target: 8 });
  });

  it("minReplicas holds the pool up when idle, and says so", () => {
    const d = pool(auto({ minReplicas: 2, scaleDownDelaySeconds: 0 }), 5).at(0, 0);
    expect(d).toMatchObject({ desired: 2, limit: "minReplicas", reason: "at minReplicas: backlog 0, 20 per replica wants 0" });
  });

  it("down only after the lower size has been wanted for scaleDownDelaySeconds, with a time to look again", () => {
    const p = pool(auto(), 0);
    p.at(0, 100); // 5
    const held = p.at(10, 0);
    expect(held).toMatchObject({ desired: 5, recommended: 0 });
    expect(held.recheckAt).toBe(70 * S);
    expect(p.at(69.9, 0).desired).toBe(5);
    expect(p.at(70, 0).desired).toBe(0); // 0 wanted since 10 s: the whole 60 s
  });

  it("steps down through intermediate sizes, each after its own delay", () => {
    const p = pool(auto({ scaleDownDelaySeconds: 10 }));
    p.at(0, 200); // 10
    p.at(5, 60); // 3
    const d = p.at(6, 0);
    expect(d).toMatchObject({ desired: 10, recheckAt: 15 * S });
    expect(p.at(15.1, 0)).toMatchObject({ desired: 3, recheckAt: 16 * S });
    expect(p.at(16.1, 0).desired).toBe(0);
  });

  it("does not flap when the backlog oscillates around a threshold: it keeps the peak", () => {
    const p = pool(auto({ scaleDownDelaySeconds: 30 }));
    const sizes: number[] = [];
    // Backlog alternating 39 / 41 (2 vs 3 replicas) every 2 s for two minutes.
    for (let t = 0; t <= 120; t += 2) sizes.push(p.at(t, t % 4 === 0 ? 41 : 39).desired);
    expect(new Set(sizes)).toEqual(new Set([3]));
    // Once the backlog settles at 39 for the whole window, 2.
    for (let t = 122; t <= 160; t += 2) p.at(t, 39);
    expect(p.replicas).toBe(2);
  });

  it("a first decision starts from the current size: a new leader waits a full delay before scaling down", () => {
    const p = pool(auto(), 4);
    expect(p.at(0, 0)).toMatchObject({ desired: 4, recheckAt: 60 * S });
    expect(p.at(59, 0).desired).toBe(4);
    expect(p.at(60.01, 0).desired).toBe(0);
  });

  it("a pool with no pod yet is not held at its default size: a new TaskWorker with minReplicas 0 goes to 0 at once", () => {
    const fresh = decide({ autoscaling: auto(), concurrency: 4, current: 1, backlog: 0, history: [], hasPods: false, now: 0 });
    expect(fresh.desired).toBe(0);
    // The same pool with a pod running keeps it for the delay (a new leader must not stop busy pods).
    const running = decide({ autoscaling: auto(), concurrency: 4, current: 1, backlog: 0, history: [], hasPods: true, now: 0 });
    expect(running.desired).toBe(1);
  });

  it("a maxReplicas lowered below the current size applies at once, whatever the window holds", () => {
    const p = pool(auto({ maxReplicas: 10 }));
    p.at(0, 200); // 10
    const d = decide({ autoscaling: auto({ maxReplicas: 4 }), concurrency: 4, current: 10, backlog: 200, history: p.at(1, 200).history, now: 2 * S });
    expect(d).toMatchObject({ desired: 4, limit: "maxReplicas" });
  });

  it("a scaleDownDelaySeconds of 0 scales down at once", () => {
    const p = pool(auto({ scaleDownDelaySeconds: 0 }));
    p.at(0, 100);
    expect(p.at(0.001, 0).desired).toBe(0);
  });

  it("kubectl scale (a size it did not choose) is overridden by the next decision, up at once and down after the delay", () => {
    const p = pool(auto({ scaleDownDelaySeconds: 30 }));
    p.at(0, 40); // 2
    const up = decide({ autoscaling: auto({ scaleDownDelaySeconds: 30 }), concurrency: 4, current: 0, backlog: 40, history: p.at(1, 40).history, now: 2 * S });
    expect(up.desired).toBe(2); // scaled to 0 by hand: back up at once
    const down = decide({ autoscaling: auto({ scaleDownDelaySeconds: 30 }), concurrency: 4, current: 7, backlog: 40, history: up.history, now: 3 * S });
    expect(down.desired).toBe(2); // scaled to 7 by hand: nothing in the window wanted more than 2
  });

  it("with the backlog unknown it only keeps the size within the bounds", () => {
    expect(decide({ autoscaling: auto(), concurrency: 4, current: 5, backlog: undefined, history: [], now: 0 })).toMatchObject({ desired: 5, reason: "keeping 5: the backlog is unknown" });
    expect(decide({ autoscaling: auto({ maxReplicas: 3 }), concurrency: 4, current: 5, backlog: undefined, history: [], now: 0 })).toMatchObject({ desired: 3, limit: "maxReplicas" });
    expect(decide({ autoscaling: auto({ minReplicas: 2 }), concurrency: 4, current: 0, backlog: undefined, history: [], now: 0 })).toMatchObject({ desired: 2, limit: "minReplicas" });
  });

  it("keeps only the samples that can still count", () => {
    const p = pool(auto({ scaleDownDelaySeconds: 10 }));
    for (let t = 0; t < 1000; t++) p.at(t, t % 2 ? 0 : 100);
    expect(p.at(1000, 0).history.length).toBeLessThanOrEqual(12);
  });
});

const info = (name: string, backlog: number, inFlight: number, workers: [string, number][] = []): TaskInfo => ({
  name,
  backlog,
  inFlight,
  workers: workers.map(([workerId, n]) => ({ workerId, concurrency: 4, inFlight: n, lastSeenAt: new Date(0).toISOString() })),
});

describe("backlog, pool tasks and deletion costs", () => {
  it("the backlog is runs waiting plus running of the pool's tasks; a task shared by two pools counts whole in each", () => {
    const tasks = [info("resize", 10, 3), info("thumb", 5, 1), info("other", 100, 100)];
    expect(backlogOf(tasks, new Set(["resize", "thumb"]))).toBe(19);
    expect(backlogOf(tasks, new Set(["resize"]))).toBe(13);
    expect(backlogOf(tasks, new Set(["resize"]))).toBe(13); // the other pool serving resize sees the same 13
  });

  it("a pool without spec.tasks serves the tasks its pods' workers report; none known: undefined", () => {
    const tasks = [info("a", 1, 0, [["images-7d9f8c-abcde", 0]]), info("b", 1, 0, [["images2-7d9f8c-abcde", 0]])];
    expect(poolTasks("images", undefined, tasks)).toEqual(new Set(["a"]));
    expect(poolTasks("images", ["b", "c"], tasks)).toEqual(new Set(["b", "c"]));
    expect(poolTasks("nothing", undefined, tasks)).toBeUndefined();
  });

  it("a pod's cost is its runs in flight over all tasks; a pod the run API does not know is cheapest", () => {
    const tasks = [info("a", 0, 3, [["p1", 2], ["p2", 0]]), info("b", 0, 1, [["p1", 1]])];
    expect(deletionCosts(["p1", "p2", "p3"], tasks)).toEqual(new Map([["p1", 3], ["p2", 0], ["p3", -1]]));
  });
});

describe("Autoscaler.step (the I/O around the decision, against a recording fake of the Kubernetes calls)", () => {
  type Call = string;
  function rig(pods: { name: string; cost?: string }[]) {
    const calls: Call[] = [];
    const kube = {
      patchScale: async (_p: string, _ns: string, name: string, replicas: number) => (calls.push(`scale ${name} ${replicas}`), { replicas }),
      listPods: async () => pods.map((p) => ({ metadata: { name: p.name, annotations: p.cost === undefined ? {} : { [POD_DELETION_COST]: p.cost } } })),
      annotatePod: async (_ns: string, name: string, a: Record<string, string>) => (calls.push(`annotate ${name} ${a[POD_DELETION_COST]}`), {}),
    } as unknown as Kube;
    const events = { record: async (_s: unknown, _t: string, reason: string, _a: string, note: string) => void calls.push(`event ${reason} ${note}`) } as unknown as EventRecorder;
    let now = 0;
    let snap: TaskSnapshot = { ok: true, tasks: [] };
    const scaler = new Autoscaler({ kube, events, log: pino({ level: "silent" }), snapshot: async () => snap, now: () => now });
    return {
      calls,
      scaler,
      set(s: TaskSnapshot, at: number) {
        snap = s;
        now = at * S;
      },
    };
  }
  const worker = (replicas: number, generation: number, a: Partial<Autoscaling> = {}): TaskWorker => ({
    apiVersion: "offload.dev/v1alpha1",
    kind: "TaskWorker",
    metadata: { name: "pool", namespace: "ns", uid: "u1", generation },
    spec: { image: "i", module: "m", tasks: ["a"], replicas, concurrency: 4, drainSeconds: 30, autoscaling: auto({ targetBacklogPerReplica: 10, scaleDownDelaySeconds: 10, ...a }) },
    status: { replicas }, // its pods exist as asked
  });

  it("up: one scale write and one event, no pod touched; an informer copy not yet showing the write changes nothing", async () => {
    const r = rig([]);
    r.set({ ok: true, tasks: [info("a", 25, 0)] }, 0);
    expect((await r.scaler.step(worker(0, 1)))?.replicas).toBe(3);
    expect(r.calls).toEqual(["scale pool 3", "event Autoscaled Scaled from 0 to 3: backlog 25, 10 per replica"]);
    // The same reconcile again from a cache still at generation 1 (replicas 0): it knows it wrote 3.
    expect((await r.scaler.step(worker(0, 1)))?.replicas).toBe(3);
    expect(r.calls.length).toBe(2);
  });

  it("down: after the delay, pods marked where the cost changed (busy 2, idle 0, unknown -1), then one scale write", async () => {
    const r = rig([{ name: "p-busy" }, { name: "p-idle", cost: "0" }, { name: "p-new", cost: "5" }]);
    r.set({ ok: true, tasks: [info("a", 25, 0)] }, 0);
    await r.scaler.step(worker(0, 1));
    r.set({ ok: true, tasks: [info("a", 0, 2, [["p-busy", 2], ["p-idle", 0]])] }, 1);
    const held = await r.scaler.step(worker(3, 2));
    expect(held).toMatchObject({ replicas: 3, requeueAfterMs: 10 * S + 5 });
    expect(r.calls.filter((c) => c.startsWith("annotate"))).toEqual([]); // not while holding
    r.set({ ok: true, tasks: [info("a", 0, 2, [["p-busy", 2], ["p-idle", 0]])] }, 11);
    expect((await r.scaler.step(worker(3, 2)))?.replicas).toBe(1);
    expect(r.calls.slice(2)).toEqual(["annotate p-busy 2", "annotate p-new -1", "scale pool 1", "event Autoscaled Scaled from 3 to 1: backlog 2, 10 per replica"]);
  });

  it("with the run API unreachable: ScalingActive=False, no write even with a scale-down due", async () => {
    const r = rig([{ name: "p1" }]);
    r.set({ ok: true, tasks: [info("a", 0, 0)] }, 0);
    await r.scaler.step(worker(3, 1)); // holds 3 for the delay
    r.set({ ok: false, reason: "RunApiUnavailable", message: "the run API's task list is unavailable: ECONNREFUSED" }, 60);
    const out = await r.scaler.step(worker(3, 1));
    expect(out?.replicas).toBe(3);
    expect(out?.conditions[0]).toMatchObject({ type: "ScalingActive", status: "False", reason: "RunApiUnavailable" });
    expect(r.calls).toEqual([]);
  });
});
