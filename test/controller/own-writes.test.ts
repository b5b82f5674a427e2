import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { OffloadClient, type Schedule } from "@offload/sdk/internal";
import { pino } from "pino";
import { EventRecorder } from "../../operator/src/controller/events.js";
import { Kube } from "../../operator/src/controller/kube.js";
import { OwnWrites } from "../../operator/src/controller/own-writes.js";
import { reconcileTaskRun, type TaskRunDeps } from "../../operator/src/controller/taskrun.js";
import { reconcileTaskSchedule, SCHEDULE_FINALIZER, type TaskScheduleDeps } from "../../operator/src/controller/taskschedule.js";
import { reconcileTaskWorker, type TaskWorkerDeps } from "../../operator/src/controller/taskworker.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { startStubApi, taskRun, taskWorker, type StubApi } from "./support.js";

const NS = "stale";
type Cond = { type: string; status: string; reason: string; lastTransitionTime: string };
const conds = (o: Obj | undefined): Cond[] => ((o?.status as { conditions?: Cond[] } | undefined)?.conditions ?? []);
const times = (o: Obj | undefined): Record<string, string> => Object.fromEntries(conds(o).map((c) => [c.type, c.lastTransitionTime]));

// The reconciles run in-process against the Kubernetes stand-in, with an informer "cache" the test holds still:
// each reconcile reads the object as it was before the controller's own last write, as one does when it runs before
// the watch event for that write has come back. It must neither stamp the conditions anew nor record its Events again.
describe("a reconcile on an informer cache that has not seen the controller's own last write", () => {
  let fake: FakeKube;
  let api: StubApi;
  let kube: Kube;
  let recorder: EventRecorder;
  let clock = new Date("2026-01-01T00:00:00Z");
  const recorded: string[] = [];
  const tick = (): void => void (clock = new Date(clock.getTime() + 1000));

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    fake.ensureNamespace(NS);
    api = await startStubApi();
    kube = new Kube(fake.kubeConfig());
    recorder = new EventRecorder(kube, "test", pino({ level: "silent" }));
  });

  afterAll(async () => {
    await api?.stop();
    await fake?.close();
  });

  /** The real recorder, noting each reason (a repeat becomes a series count on the first Event, which `kubectl get events` shows as x2). */
  const events = {
    record: (s: Parameters<EventRecorder["record"]>[0], type: "Normal" | "Warning", reason: string, action: string, note: string) => {
      recorded.push(reason);
      return recorder.record(s, type, reason, action, note);
    },
  } as unknown as EventRecorder;

  it("TaskWorker: the conditions keep their lastTransitionTime, and Created and Scaled are recorded once each", async () => {
    fake.create(taskWorker("pool", NS, { image: "img:1", module: "m.js", replicas: 2 }));
    let cachedTw: KubernetesObject | undefined = fake.get("taskworkers", NS, "pool");
    let cachedDep: V1Deployment | undefined; // the Deployment informer has not seen the Deployment made yet
    const deps: TaskWorkerDeps = {
      kube,
      events,
      defaults: { natsUrl: "nats://nats:4222" },
      getTaskWorker: () => cachedTw,
      getDeployment: () => cachedDep,
      writes: { taskWorkers: new OwnWrites(), deployments: new OwnWrites() },
      now: () => clock,
    };
    await reconcileTaskWorker(deps, NS, "pool");
    const first = times(fake.get("taskworkers", NS, "pool"));
    expect(Object.keys(first).sort()).toEqual(["Degraded", "Progressing", "Ready"]);
    expect(recorded).toEqual(["Created"]);

    tick();
    await reconcileTaskWorker(deps, NS, "pool"); // the cache still shows the TaskWorker without its status
    expect(times(fake.get("taskworkers", NS, "pool"))).toEqual(first);

    // kubectl scale: the TaskWorker cache shows the new spec; the Deployment cache still the Deployment before the apply.
    fake.patch("taskworkers", NS, "pool", { spec: { replicas: 3 } });
    cachedTw = fake.get("taskworkers", NS, "pool");
    cachedDep = fake.get("deployments", NS, "pool") as unknown as V1Deployment;
    tick();
    await reconcileTaskWorker(deps, NS, "pool");
    expect(fake.get("deployments", NS, "pool")?.spec).toMatchObject({ replicas: 3 });
    const scaled = fake.get("taskworkers", NS, "pool");
    tick();
    await reconcileTaskWorker(deps, NS, "pool");
    expect(recorded).toEqual(["Created", "Scaled"]);
    expect(times(fake.get("taskworkers", NS, "pool"))).toEqual(first);
    // The second reconcile wrote nothing: the status is as the first one left it.
    expect(fake.get("taskworkers", NS, "pool")?.metadata).toMatchObject({ resourceVersion: (scaled?.metadata as Obj).resourceVersion });
    expect(fake.list("events.events.k8s.io", NS).filter((e) => e.series !== undefined)).toEqual([]);

    // Once the cache shows the write, it rules again (a readiness change by the Deployment controller is followed).
    fake.patchStatus("deployments", NS, "pool", { observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 });
    cachedTw = fake.get("taskworkers", NS, "pool");
    cachedDep = fake.get("deployments", NS, "pool") as unknown as V1Deployment;
    tick();
    await reconcileTaskWorker(deps, NS, "pool");
    const ready = conds(fake.get("taskworkers", NS, "pool")).find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "True", lastTransitionTime: clock.toISOString().replace(/\.\d{3}Z$/, "Z") });
    expect(times(fake.get("taskworkers", NS, "pool")).Degraded).toBe(first.Degraded);
  });

  it("TaskRun: a cache without the runId neither submits again nor records Submitted twice", async () => {
    recorded.length = 0;
    // With its finalizer already, so that the cached copy differs from the stored one only by the status write.
    const tr = fake.create({ ...taskRun("slow", NS, { task: "slow-report" }), metadata: { name: "slow", namespace: NS, finalizers: ["offload.dev/cancel-run"] } });
    const deps: TaskRunDeps = {
      kube,
      events,
      api: new OffloadClient({ apiUrl: api.url }),
      getTaskRun: () => tr,
      writes: new OwnWrites(),
      tasks: async () => undefined,
      pollMs: 1000,
      cancelGiveUpMs: 300_000,
      now: () => clock,
    };
    await reconcileTaskRun(deps, NS, "slow");
    const accepted = conds(fake.get("taskruns", NS, "slow")).find((c) => c.type === "Accepted");
    expect(accepted).toMatchObject({ status: "True", reason: "Submitted" });
    tick();
    await reconcileTaskRun(deps, NS, "slow");
    expect(recorded).toEqual(["Submitted"]);
    expect(api.posts.filter((p) => p.task === "slow-report")).toHaveLength(1);
    expect(fake.get("taskruns", NS, "slow")?.status).toMatchObject({ state: "RUNNING" }); // it read the run instead
    expect(conds(fake.get("taskruns", NS, "slow")).find((c) => c.type === "Accepted")?.lastTransitionTime).toBe(accepted?.lastTransitionTime);
  });

  it("TaskSchedule: a cache without the accepted generation neither puts the schedule again nor records Created twice", async () => {
    recorded.length = 0;
    const ts = fake.create({
      apiVersion: "offload.dev/v1alpha1",
      kind: "TaskSchedule",
      metadata: { name: "nightly", namespace: NS, finalizers: [SCHEDULE_FINALIZER] },
      spec: { schedule: "@hourly", task: "report" },
    });
    const held = { key: "taskschedule.nightly", namespace: NS, task: "report", schedule: "@hourly", timeZone: "UTC", parameters: null, concurrencyPolicy: "Allow", suspend: false,
      startingDeadlineSeconds: null, priority: null, concurrencyKey: null, rateLimitKey: null, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z",
      lastScheduleTime: null, lastRunId: null, nextScheduleTime: "2026-01-01T01:00:00.000Z" } as Schedule;
    let puts = 0;
    const deps: TaskScheduleDeps = {
      kube,
      events,
      api: { putSchedule: async () => (puts++, held), getSchedule: async () => held, deleteSchedule: async () => undefined },
      getTaskSchedule: () => ts,
      writes: new OwnWrites(),
      minRequeueMs: 1000,
      maxRequeueMs: 60_000,
      deleteGiveUpMs: 300_000,
      now: () => clock,
    };
    await reconcileTaskSchedule(deps, NS, "nightly");
    const ready = conds(fake.get("taskschedules", NS, "nightly")).find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "True", reason: "Scheduled" });
    tick();
    await reconcileTaskSchedule(deps, NS, "nightly");
    expect(recorded).toEqual(["Created"]);
    expect(puts).toBe(1);
    expect(conds(fake.get("taskschedules", NS, "nightly")).find((c) => c.type === "Ready")?.lastTransitionTime).toBe(ready?.lastTransitionTime);
  });
});

describe("OwnWrites", () => {
  const obj = (rv: string, uid = "u1", status = {}): KubernetesObject & { status: Obj } => ({ metadata: { name: "a", namespace: "ns", uid, resourceVersion: rv }, status });

  it("answers the last write for a cache at any version before it, across a chain of writes; any other version drops it", () => {
    const w = new OwnWrites();
    w.wrote(obj("1"), obj("2", "u1", { n: 1 })); // e.g. a finalizer write
    w.wrote(obj("2", "u1", { n: 1 }), obj("3", "u1", { n: 2 })); // then a status write
    expect(w.view(obj("1"))?.status).toEqual({ n: 2 });
    expect(w.view(obj("2"))?.status).toEqual({ n: 2 });
    expect(w.view(obj("4", "u1", { n: 9 }))?.status).toEqual({ n: 9 }); // someone else's later change: the cache rules
    expect(w.view(obj("1"))?.status).toEqual({}); // and the entry is gone
  });

  it("does not take a new object of the same name for the old one, and forgets a deleted one", () => {
    const w = new OwnWrites();
    w.wrote(obj("1"), obj("2", "u1", { n: 1 }));
    expect(w.view(obj("1", "u2"))?.status).toEqual({});
    w.wrote(obj("1"), obj("2", "u1", { n: 1 }));
    w.forget("ns", "a");
    expect(w.view(obj("1"))?.status).toEqual({});
    w.wrote(obj("5"), obj("5", "u1", { n: 1 })); // a write that changed nothing keeps nothing
    expect(w.view(obj("5"))?.status).toEqual({});
  });
});
