import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor, type Child } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { ROOT, startController, startStubApi, taskWorker, type StubApi, type StubTask } from "./support.js";

const NS = "autoscale";
const TASK = "resize";
const COST = "controller.kubernetes.io/pod-deletion-cost";
const KUBECTL = join(ROOT, ".tools/bin/kubectl");

type Cond = { type: string; status: string; reason: string; message: string };
type TwStatus = { readyReplicas?: number; autoscaling?: { desiredReplicas?: number; backlog?: number; lastScaleTime?: string; reason?: string }; conditions?: Cond[] };
type Meta = { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };

const task = (backlog: number, inFlight = 0, workers: [string, number][] = []): StubTask => ({
  name: TASK,
  backlog,
  inFlight,
  workers: workers.map(([workerId, n]) => ({ workerId, concurrency: 4, inFlight: n, lastSeenAt: new Date().toISOString() })),
});

// The autoscaler against the Kubernetes stand-in with its Deployment/ReplicaSet controllers and pods that turn
// ready, and a stub run API whose GET /v1/tasks long-polls like the real one: the test changes the backlog,
// the controller process decides, writes the scale subresource, marks pods, and the ReplicaSet picks victims.
describe("the TaskWorker autoscaler (controller process, stand-in with workloads, stub run API)", () => {
  let fake: FakeKube;
  let api: StubApi;
  let ctl: Child | undefined;
  let bare: Child | undefined;
  let kubeconfig: string;
  let dir: string;

  const tw = (name: string, ns = NS): Obj | undefined => fake.get("taskworkers", ns, name);
  const replicas = (name: string, ns = NS): number | undefined => (tw(name, ns)?.spec as { replicas?: number } | undefined)?.replicas;
  const status = (name: string, ns = NS): TwStatus => (tw(name, ns)?.status ?? {}) as TwStatus;
  const cond = (name: string, type: string, ns = NS): Cond | undefined => status(name, ns).conditions?.find((c) => c.type === type);
  const pods = (name: string): Meta[] =>
    fake
      .list("pods", NS)
      .map((p) => p.metadata as Meta)
      .filter((m) => m.labels?.["app.kubernetes.io/instance"] === name && !m.deletionTimestamp);
  const readyPods = (name: string): string[] =>
    fake
      .list("pods", NS)
      .filter((p) => (p.metadata as Meta).labels?.["app.kubernetes.io/instance"] === name && !(p.metadata as Meta).deletionTimestamp)
      .filter((p) => ((p.status as { conditions?: Cond[] } | undefined)?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"))
      .map((p) => (p.metadata as Meta).name);
  const scaled = (name: string): string[] =>
    fake
      .list("events.events.k8s.io", NS)
      .filter((e) => e.reason === "Autoscaled" && (e.regarding as Obj).name === name)
      .map((e) => e.note as string);
  const podPatches = (from = 0) => fake.requests.slice(from).filter((r) => r.method === "PATCH" && r.path.startsWith(`/api/v1/namespaces/${NS}/pods/`));
  const scalePatches = (name: string, from = 0) => fake.requests.slice(from).filter((r) => r.method === "PATCH" && r.path === `/apis/offload.dev/v1alpha1/namespaces/${NS}/taskworkers/${name}/scale`);
  const kubectl = async (...args: string[]): Promise<string> => {
    const { stdout } = await promisify(execFile)(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "cache"), "-n", NS, ...args]);
    return stdout;
  };
  /** Sets the backlog and waits until the controller has decided on it (status.autoscaling.backlog). */
  const backlog = async (name: string, t: StubTask): Promise<void> => {
    api.setTasks([t]);
    await waitFor(`the autoscaler to count backlog ${t.backlog + t.inFlight}`, () => status(name).autoscaling?.backlog === t.backlog + t.inFlight);
  };
  const setAutoscaling = (name: string, a: Record<string, number>): void => {
    fake.patch("taskworkers", NS, name, { spec: { autoscaling: a } });
  };

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true, workloads: true });
    fake.ensureNamespace(NS);
    fake.ensureNamespace("no-api");
    kubeconfig = await fake.writeKubeconfig();
    dir = await mkdtemp(join(tmpdir(), "offload-autoscale-"));
    api = await startStubApi();
    api.setTasks([]);
    ctl = await startController(fake, "ctl-autoscale", { OFFLOAD_API_URL: api.url, OFFLOAD_WATCH_NAMESPACE: NS });
    // A second controller, for another namespace, with no run API at all.
    bare = await startController(fake, "ctl-no-api", { OFFLOAD_WATCH_NAMESPACE: "no-api", OFFLOAD_LEASE_NAME: "offload-controller-no-api" });
    // Generous: two Node processes starting at once on a busy 2-core runner.
    await Promise.all([ctl.waitForOutput("controller acting", 60_000), bare.waitForOutput("controller acting", 60_000)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([ctl?.stop(5000), bare?.stop(5000)]);
    if (process.env.SHOW_CONTROLLER_LOG) process.stderr.write(ctl?.output() ?? "");
    await api?.stop();
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("0 → N on backlog (pods ready), up to maxReplicas, with status, conditions and an Event per change; no pod marked on the way up", async () => {
    fake.create(
      taskWorker("images", NS, {
        image: "img:1",
        module: "m.js",
        tasks: [TASK],
        replicas: 0,
        drainSeconds: 20,
        autoscaling: { minReplicas: 0, maxReplicas: 4, targetBacklogPerReplica: 10, scaleDownDelaySeconds: 2 },
      }),
    );
    await waitFor("ScalingActive=True", () => cond("images", "ScalingActive")?.status === "True");
    expect(status("images").autoscaling).toMatchObject({ desiredReplicas: 0, backlog: 0 });

    await backlog("images", task(25));
    await waitFor("3 ready pods", () => readyPods("images").length === 3);
    expect(replicas("images")).toBe(3);
    expect(scaled("images")).toEqual(["Scaled from 0 to 3: backlog 25, 10 per replica"]);
    expect(status("images").autoscaling).toMatchObject({ desiredReplicas: 3, backlog: 25, reason: "backlog 25, 10 per replica wants 3" });
    expect(status("images").autoscaling?.lastScaleTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(cond("images", "ScalingLimited")).toMatchObject({ status: "False", reason: "DesiredWithinRange" });

    await backlog("images", task(100));
    await waitFor("4 ready pods", () => readyPods("images").length === 4);
    expect(replicas("images")).toBe(4);
    expect(cond("images", "ScalingLimited")).toMatchObject({ status: "True", reason: "TooManyReplicas", message: "at maxReplicas: backlog 100, 10 per replica wants 10" });
    expect(scaled("images")).toEqual(["Scaled from 0 to 3: backlog 25, 10 per replica", "Scaled from 3 to 4: backlog 100, 10 per replica (at maxReplicas)"]);
    // Only the scale subresource was written, and the Deployment followed it; no pod was annotated.
    expect(scalePatches("images").length).toBe(2);
    expect(podPatches()).toEqual([]);
    expect(pods("images").every((p) => p.annotations?.[COST] === undefined)).toBe(true);
    // A pod chosen for deletion anyway gets to drain: its grace period covers drainSeconds.
    const dep = fake.get("deployments", NS, "images") as { spec: { template: { spec: { terminationGracePeriodSeconds: number } } } };
    expect(dep.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(20);
  });

  it("scale-down waits for the delay, marks each pod with its runs in flight just before, and the busy pod survives", async () => {
    const [idle1, idle2, busy, unknown] = pods("images").map((p) => p.name) as [string, string, string, string];
    const from = fake.requests.length;
    // 3 runs in flight, all on one pod: 1 replica is enough once the delay has passed.
    api.setTasks([task(0, 3, [[idle1, 0], [busy, 3], [idle2, 0]])]);
    await waitFor("the scale-down held back", () => status("images").autoscaling?.reason?.includes("keeping 4"));
    expect(replicas("images")).toBe(4);
    await waitFor("1 replica", () => replicas("images") === 1);
    await waitFor("only the busy pod left", () => pods("images").length === 1 && pods("images")[0]);
    expect(pods("images").map((p) => p.name)).toEqual([busy]);
    expect(scaled("images").at(-1)).toBe("Scaled from 4 to 1: backlog 3, 10 per replica");
    // Each pod annotated once, before the scale write that lowered replicas: idle 0, busy 3, unknown to the run API -1.
    const patches = podPatches(from);
    expect(patches.map((r) => r.path.split("/").at(-1)).sort()).toEqual([idle1, idle2, busy, unknown].sort());
    const scaleAt = fake.requests.indexOf(scalePatches("images", from)[0]!);
    expect(patches.every((r) => fake.requests.indexOf(r) < scaleAt)).toBe(true);
    expect(pods("images")[0]!.annotations?.[COST]).toBe("3");
  });

  it("does not flap when the backlog oscillates around a threshold", async () => {
    setAutoscaling("images", { minReplicas: 0, maxReplicas: 4, targetBacklogPerReplica: 10, scaleDownDelaySeconds: 60 });
    const before = scaled("images").length;
    // 21 wants 3 replicas, 19 wants 2: back and forth, each value seen and decided on by the controller.
    for (let i = 0; i < 8; i++) await backlog("images", task(i % 2 ? 19 : 21));
    expect(scaled("images").slice(before)).toEqual(["Scaled from 1 to 3: backlog 21, 10 per replica"]);
    expect(replicas("images")).toBe(3);
    expect(status("images").autoscaling?.reason).toContain("wants 2; keeping 3");
  });

  it("kubectl scale while autoscaling: the next decision sets the size the backlog asks for again", async () => {
    const from = scaled("images").length;
    // Below what the backlog (19: 2 replicas) asks for: up at once, to what it asks for now.
    expect(await kubectl("scale", "tw/images", "--replicas=1")).toContain("scaled");
    await waitFor("up to 2", () => scaled("images").length === from + 1 && replicas("images") === 2);
    expect(scaled("images").at(-1)).toBe("Scaled from 1 to 2: backlog 19, 10 per replica");
    // Above it: down at once to the most the window has wanted (3, a moment ago), no further until the delay.
    await kubectl("scale", "tw/images", "--replicas=6");
    await waitFor("down to 3", () => scaled("images").length === from + 2 && replicas("images") === 3);
    expect(scaled("images").at(-1)).toBe("Scaled from 6 to 3: backlog 19, 10 per replica");
    await waitFor("the status to say why 3", () => status("images").autoscaling?.reason?.includes("wants 2; keeping 3"));
    await waitFor("3 pods", () => pods("images").length === 3);
  });

  it("kubectl get tw -o wide has the Min, Max and Backlog columns (plain get: Backlog only)", async () => {
    const rows = (out: string): string[][] => out.trim().split("\n").map((l) => l.trim().split(/\s+/));
    await waitFor("3 ready replicas in the status", () => status("images").readyReplicas === 3);
    const [head, row] = rows(await kubectl("get", "tw", "images", "-o", "wide"));
    expect(head).toEqual(["NAME", "READY", "DESIRED", "TASKS", "BACKLOG", "MIN", "MAX", "AGE"]);
    expect(row!.slice(0, 7)).toEqual(["images", "3", "3", '["resize"]', "19", "0", "4"]);
    const [plainHead] = rows(await kubectl("get", "tw", "images"));
    expect(plainHead).toEqual(["NAME", "READY", "DESIRED", "TASKS", "BACKLOG", "AGE"]);
  });

  it("N → 0 once nothing is waiting or running, after the delay", async () => {
    await backlog("images", task(0));
    expect(replicas("images")).toBe(3); // held by the 60 s delay
    setAutoscaling("images", { minReplicas: 0, maxReplicas: 4, targetBacklogPerReplica: 10, scaleDownDelaySeconds: 1 });
    await waitFor("0 replicas", () => replicas("images") === 0);
    await waitFor("no pods", () => pods("images").length === 0);
    // Usually through 2 first: 2 was wanted until a moment before 0, and a size goes only once the lower one held for the delay.
    expect(scaled("images").at(-1)).toMatch(/^Scaled from [23] to 0: backlog 0, 10 per replica$/);
    expect(cond("images", "ScalingLimited")).toMatchObject({ status: "False" });
  });

  it("minReplicas keeps pods when idle, and says so", async () => {
    setAutoscaling("images", { minReplicas: 2, maxReplicas: 4, targetBacklogPerReplica: 10, scaleDownDelaySeconds: 1 });
    await waitFor("2 ready pods", () => readyPods("images").length === 2);
    await waitFor("ScalingLimited=True", () => cond("images", "ScalingLimited")?.status === "True");
    expect(cond("images", "ScalingLimited")).toMatchObject({ reason: "TooFewReplicas", message: "at minReplicas: backlog 0, 10 per replica wants 0" });
    expect(scaled("images").at(-1)).toBe("Scaled from 0 to 2: backlog 0, 10 per replica (at minReplicas)");
  });

  it("while the run API cannot be reached: ScalingActive=False and the size is left alone, then it resumes", async () => {
    await backlog("images", task(0, 0));
    api.down = true;
    api.setTasks([task(0)]); // ends the long-poll that waits: its answer is a cut connection
    await waitFor("ScalingActive=False", () => cond("images", "ScalingActive")?.status === "False");
    expect(cond("images", "ScalingActive")).toMatchObject({ reason: "RunApiUnavailable" });
    expect(cond("images", "ScalingActive")?.message).toContain("replicas are left as they are");
    expect(replicas("images")).toBe(2);
    api.down = false;
    await backlog("images", task(35));
    await waitFor("ScalingActive=True", () => cond("images", "ScalingActive")?.status === "True" && replicas("images") === 4);
  });

  it("without a run API: ScalingActive=False with reason NoRunApi, replicas as set", async () => {
    fake.create(
      taskWorker("lonely", "no-api", { image: "img:1", module: "m.js", tasks: [TASK], replicas: 2, autoscaling: { maxReplicas: 5 } }),
    );
    await waitFor("ScalingActive=False", () => cond("lonely", "ScalingActive", "no-api")?.status === "False");
    expect(cond("lonely", "ScalingActive", "no-api")).toMatchObject({ reason: "NoRunApi" });
    expect(replicas("lonely", "no-api")).toBe(2);
    expect(status("lonely", "no-api").autoscaling).toMatchObject({ desiredReplicas: 2, reason: "keeping 2: the backlog is unknown" });
  });

  it("removing spec.autoscaling leaves the size to replicas and drops the autoscaling status", async () => {
    fake.patch("taskworkers", NS, "images", { spec: { autoscaling: null, replicas: 1 } });
    await waitFor("no ScalingActive", () => cond("images", "ScalingActive") === undefined && status("images").autoscaling === undefined);
    await waitFor("1 pod", () => pods("images").length === 1);
  });
});
