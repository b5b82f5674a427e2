import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppsV1Api, CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { ROOT, waitFor } from "../support/index.js";
import { deletionCost, podsToDelete, startFakeKube, type FakeKube, type FakeKubeOptions, type KubeletHook, type Obj } from "./index.js";

// Installed by scripts/setup.sh, as for kubectl.test.ts.
const KUBECTL = join(ROOT, ".tools/bin/kubectl");
const COST = "controller.kubernetes.io/pod-deletion-cost";
const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const strategic = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

const deployment = (name: string, replicas: number, extra: { image?: string; grace?: number } = {}): Obj => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: "worker", image: extra.image ?? "worker:1" }], ...(extra.grace !== undefined ? { terminationGracePeriodSeconds: extra.grace } : {}) },
    },
  },
});

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const names = (pods: V1Pod[]): string[] => pods.map((p) => p.metadata!.name!).sort();

/** A stand-in with a namespace `ns`, and the client-node APIs pointed at it. */
async function standIn(ns: string, opts: FakeKubeOptions): Promise<{ fake: FakeKube; apps: AppsV1Api; core: CoreV1Api }> {
  const fake = await startFakeKube(opts);
  fake.ensureNamespace(ns);
  const kc = fake.kubeConfig(ns);
  return { fake, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
}

/** The real kubectl against `fake` in namespace `ns` (kubeconfig and discovery cache in a folder `fake.close()` removes); resolves to its stdout. */
async function kubectlFor(fake: FakeKube, ns: string): Promise<(...args: string[]) => Promise<string>> {
  const kubeconfig = await fake.writeKubeconfig(undefined, ns);
  const cache = join(dirname(kubeconfig), "cache");
  return async (...args) => (await promisify(execFile)(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", cache, ...args])).stdout;
}

/** kubectl's table output as rows of column → cell, cut at the header's column starts (a cell may be empty). */
function columns(out: string): Record<string, string>[] {
  const [header, ...lines] = out.replace(/\n+$/, "").split("\n");
  const names = header!.split(/\s{2,}/);
  let from = 0;
  const starts = names.map((n) => (from = header!.indexOf(n, from)));
  return lines.map((l) => Object.fromEntries(names.map((n, i) => [n, l.slice(starts[i], starts[i + 1]).trim()])));
}

/** A promise with its resolve and reject, for holding a kubelet hook call until the test lets it go. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// The Deployment and ReplicaSet controllers, scheduler and kubelet of the stand-in, seen through the real client-node over HTTP.
describe("workloads in the Kubernetes stand-in (no kubelet hook)", () => {
  let fake: FakeKube;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  const NS = "wl";
  const podsOf = async (app: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;
  /** The pods as stored (timestamps as strings, as the controller reads them), for ranking them as it does. */
  const storedPods = (app: string): Obj[] => fake.list("pods", NS).filter((p) => ((p.metadata as Obj).labels as Obj | undefined)?.app === app);
  const livePods = async (app: string): Promise<V1Pod[]> => (await podsOf(app)).filter((p) => !p.metadata?.deletionTimestamp);
  const readyDeployment = (name: string, replicas: number) =>
    waitFor(`deployment ${name} with ${replicas} ready, updated pods`, async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace: NS });
      const s = d.status;
      return s?.observedGeneration === d.metadata?.generation && (s?.readyReplicas ?? 0) === replicas && (s?.updatedReplicas ?? 0) === replicas && (s?.replicas ?? 0) === replicas && (await podsOf(name)).length === replicas ? d : undefined;
    });

  beforeAll(async () => {
    ({ fake, apps, core } = await standIn(NS, { crds: true, workloads: true }));
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("a Deployment of 3 gets one ReplicaSet named for its template hash and 3 Running, Ready pods, seen through a watch", async () => {
    const events: { type: string; phase?: string; ready: boolean }[] = [];
    const watch = await new Watch(fake.kubeConfig(NS)).watch(`/api/v1/namespaces/${NS}/pods`, { labelSelector: "app=web" }, (type: string, pod: V1Pod) => {
      events.push({ type, phase: pod.status?.phase, ready: ready(pod) });
    }, () => undefined);
    try {
      await apps.createNamespacedDeployment({ namespace: NS, body: deployment("web", 3) });
      const d = await readyDeployment("web", 3);
      expect(d.status?.availableReplicas).toBe(3);
      expect(d.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
        ["Available", "True", "MinimumReplicasAvailable"],
        ["Progressing", "True", "NewReplicaSetAvailable"],
      ]);
      expect(d.metadata?.annotations?.["deployment.kubernetes.io/revision"]).toBe("1");

      const rsList = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=web" })).items;
      expect(rsList).toHaveLength(1);
      const rs = rsList[0]!;
      const hash = rs.metadata!.labels!["pod-template-hash"]!;
      expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
      expect(rs.metadata!.name).toBe(`web-${hash}`);
      expect(rs.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: "Deployment", name: "web", uid: d.metadata!.uid, controller: true, blockOwnerDeletion: true })]);
      expect(rs.spec!.selector.matchLabels).toEqual({ app: "web", "pod-template-hash": hash });
      expect(rs.status).toMatchObject({ replicas: 3, readyReplicas: 3, availableReplicas: 3, fullyLabeledReplicas: 3, observedGeneration: rs.metadata!.generation });

      const pods = await podsOf("web");
      for (const p of pods) {
        expect(p.metadata!.name).toMatch(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
        expect(p.metadata!.labels).toEqual({ app: "web", "pod-template-hash": hash });
        expect(p.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: "ReplicaSet", name: rs.metadata!.name, uid: rs.metadata!.uid, controller: true })]);
        expect(p.spec!.nodeName).toBe("fake-node");
        expect(p.spec!.terminationGracePeriodSeconds).toBe(30);
        expect(p.status?.phase).toBe("Running");
        expect(ready(p)).toBe(true);
        expect(p.status?.podIP).toMatch(/^10\.244\./);
        expect(p.status?.containerStatuses?.[0]).toMatchObject({ name: "worker", ready: true, started: true });
      }
      expect(new Set(pods.map((p) => p.status!.podIP)).size).toBe(3);
      // Each pod went through the watch from Pending to Running and Ready, as the kubelet reported it.
      await waitFor("the watch to see 3 ready pods", () => events.filter((e) => e.type === "MODIFIED" && e.ready).length >= 3);
      expect(events.filter((e) => e.type === "ADDED").every((e) => e.phase === "Pending")).toBe(true);
      // The components' Events tell the story, as kubectl describe shows it.
      const recorded = (await core.listNamespacedEvent({ namespace: NS })).items;
      const about = (kind: string, name: string) => recorded.filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name).map((e) => `${e.reason}: ${e.message}`);
      expect(about("Deployment", "web")).toEqual([`ScalingReplicaSet: Scaled up replica set ${rs.metadata!.name} from 0 to 3`]);
      expect(about("ReplicaSet", rs.metadata!.name!).sort()).toEqual(names(pods).map((n) => `SuccessfulCreate: Created pod: ${n}`));
      expect(about("Pod", pods[0]!.metadata!.name!)).toEqual(["Started: Started container worker"]);
      const scheduled = fake.list("events.events.k8s.io", NS).filter((e) => e.reason === "Scheduled").map((e) => e.note);
      expect(scheduled.sort()).toEqual(names(pods).map((n) => `Successfully assigned ${NS}/${n} to fake-node`));
      // Status writes carry their writers, as on a real cluster.
      expect(Object.keys(fake.managers("pods", NS, pods[0]!.metadata!.name!))).toEqual(expect.arrayContaining(["kube-controller-manager", "kube-scheduler", "kubelet"]));
    } finally {
      watch.abort();
    }
  });

  it("scale to 1 through the scale subresource deletes the pods with the lowest pod-deletion-cost, whatever their age", async () => {
    const pods = await podsOf("web");
    // The pod the ReplicaSet would take first without costs gets the highest one: it must survive.
    const [firstVictim] = podsToDelete(storedPods("web"), 1);
    const keep = (firstVictim!.metadata as Obj).name as string;
    const others = names(pods).filter((n) => n !== keep);
    const costs: Record<string, string> = { [keep]: "100", [others[0]!]: "-5", [others[1]!]: "+7" /* invalid: counts as 0 */ };
    for (const [name, cost] of Object.entries(costs)) {
      await core.patchNamespacedPod({ name, namespace: NS, body: { metadata: { annotations: { [COST]: cost } } } }, strategic);
    }
    expect((await core.readNamespacedPod({ name: keep, namespace: NS })).metadata?.annotations?.[COST]).toBe("100");

    const scale = await apps.patchNamespacedDeploymentScale({ name: "web", namespace: NS, body: { spec: { replicas: 1 } } }, merge);
    expect(scale.spec?.replicas).toBe(1);
    await readyDeployment("web", 1);
    expect(names(await podsOf("web"))).toEqual([keep]);
    const rs = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=web" })).items;
    expect(rs.map((r) => [r.spec?.replicas, r.status?.replicas])).toEqual([[1, 1]]);
    expect(rs[0]!.metadata?.annotations?.["deployment.kubernetes.io/desired-replicas"]).toBe("1");
    const events = (await core.listNamespacedEvent({ namespace: NS })).items;
    expect(events.filter((e) => e.reason === "ScalingReplicaSet").map((e) => e.message)).toContain(`Scaled down replica set ${rs[0]!.metadata!.name} from 3 to 1`);
    expect(events.filter((e) => e.reason === "SuccessfulDelete").map((e) => e.message).sort()).toEqual(others.map((n) => `Deleted pod: ${n}`));
  });

  it("with equal costs a not-ready pod goes before ready ones, and a ready one goes before a costlier not-ready one", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("probe", 3) });
    await readyDeployment("probe", 3);
    const pods = await podsOf("probe");
    // The pod that would be kept last if all were ready fails its readiness probe.
    const ranked = podsToDelete(storedPods("probe"), 2);
    const survivor = names(pods).find((n) => !ranked.some((r) => (r.metadata as Obj).name === n))!;
    fake.workloads!.setReady(NS, survivor, false);
    await waitFor("the deployment to count 2 ready pods", async () => (await apps.readNamespacedDeployment({ name: "probe", namespace: NS })).status?.readyReplicas === 2);
    const d = await apps.readNamespacedDeployment({ name: "probe", namespace: NS });
    expect(d.status?.unavailableReplicas).toBe(1);

    await apps.patchNamespacedDeploymentScale({ name: "probe", namespace: NS, body: { spec: { replicas: 2 } } }, merge);
    await readyDeployment("probe", 2);
    const left = names(await podsOf("probe"));
    expect(left).not.toContain(survivor);
    expect(left).toHaveLength(2);

    // Readiness outranks cost: a not-ready pod with a high cost still goes before a ready one with a low cost.
    const [notReady, readyOne] = left as [string, string];
    await core.patchNamespacedPod({ name: notReady, namespace: NS, body: { metadata: { annotations: { [COST]: "1000" } } } }, strategic);
    await core.patchNamespacedPod({ name: readyOne, namespace: NS, body: { metadata: { annotations: { [COST]: "-1000" } } } }, strategic);
    fake.workloads!.setReady(NS, notReady, false);
    await waitFor("one ready pod", async () => (await apps.readNamespacedDeployment({ name: "probe", namespace: NS })).status?.readyReplicas === 1);
    await apps.patchNamespacedDeploymentScale({ name: "probe", namespace: NS, body: { spec: { replicas: 1 } } }, merge);
    await readyDeployment("probe", 1);
    expect(names(await podsOf("probe"))).toEqual([readyOne]);
  });

  it("the deletion cost is read as the ReplicaSet controller reads it: an int32 without sign or leading zeros, else 0", () => {
    const pod = (v: string): Obj => ({ metadata: { annotations: { [COST]: v } } });
    expect([pod("12"), pod("-3"), pod("0"), pod("+4"), pod("007"), pod("2147483648"), pod("-2147483648"), pod("1e3"), pod("")].map(deletionCost)).toEqual([12, -3, 0, 0, 0, 0, -2147483648, 0, 0]);
  });

  it("a template change rolls to a new ReplicaSet and scales the old one to 0, which stays as history", async () => {
    await apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: { replicas: 3 } } }, merge);
    await readyDeployment("web", 3);
    const [oldRs] = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=web" })).items;
    await apps.patchNamespacedDeployment({ name: "web", namespace: NS, body: { spec: { template: { spec: { containers: [{ name: "worker", image: "worker:2" }] } } } } }, strategic);
    await waitFor("every web pod on worker:2", async () => {
      const pods = await podsOf("web");
      return pods.length === 3 && pods.every((p) => p.spec?.containers[0]?.image === "worker:2" && ready(p));
    });
    const d = await readyDeployment("web", 3);
    expect(d.metadata?.annotations?.["deployment.kubernetes.io/revision"]).toBe("2");
    const rs = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=web" })).items;
    expect(rs).toHaveLength(2);
    const newRs = rs.find((r) => r.metadata!.uid !== oldRs!.metadata!.uid)!;
    expect(newRs.metadata!.name).not.toBe(oldRs!.metadata!.name);
    expect(newRs.metadata!.annotations?.["deployment.kubernetes.io/revision"]).toBe("2");
    expect(newRs.spec?.replicas).toBe(3);
    const old = rs.find((r) => r.metadata!.uid === oldRs!.metadata!.uid)!;
    expect([old.spec?.replicas, old.status?.replicas]).toEqual([0, 0]);
    const hash = newRs.metadata!.labels!["pod-template-hash"];
    expect((await podsOf("web")).every((p) => p.metadata!.labels!["pod-template-hash"] === hash)).toBe(true);
  });

  it("kubectl lists the pods by label and field selector and annotates one", async () => {
    const run = await kubectlFor(fake, NS);
    const pods = names(await podsOf("web"));
    const listed = await run("get", "pods", "-l", "app=web", "-o", "name");
    expect(listed.trim().split("\n").sort()).toEqual(pods.map((n) => `pod/${n}`));
    const running = await run("get", "pods", "--field-selector", "status.phase=Running,spec.nodeName=fake-node", "-o", "name");
    expect(running).toContain(`pod/${pods[0]}`);
    expect(await run("get", "pods", "-l", "app=nothing", "-o", "name")).toBe("");
    await run("annotate", "pod", pods[0]!, `${COST}=42`);
    expect((await core.readNamespacedPod({ name: pods[0]!, namespace: NS })).metadata?.annotations?.[COST]).toBe("42");
    const rs = await run("get", "rs", "-l", "app=web", "-o", "jsonpath={.items[*].spec.replicas}");
    expect(rs.split(" ").sort()).toEqual(["0", "3"]);

    // The human-readable output is the server's Table, as on a cluster.
    const table = columns(await run("get", "pods", "-l", "app=web", "-o", "wide"));
    expect(Object.keys(table[0]!)).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    expect(table.map((r) => [r.NAME, r.READY, r.STATUS, r.RESTARTS, r.NODE, r["READINESS GATES"]]).sort()).toEqual(pods.map((n) => [n, "1/1", "Running", "0", "fake-node", "<none>"]));
    expect(columns(await run("get", "deploy", "web"))).toEqual([{ NAME: "web", READY: "3/3", "UP-TO-DATE": "3", AVAILABLE: "3", AGE: expect.stringMatching(/^\d+s$/) }]);
    // A custom resource's columns are its CRD's printer columns, the priority-1 ones with -o wide.
    fake.create({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "tw", namespace: NS }, spec: { image: "img:1", module: "m.js", replicas: 2, tasks: ["resize"], autoscaling: { minReplicas: 1, maxReplicas: 5 } } });
    const [row] = columns(await run("get", "tw", "tw", "-o", "wide"));
    // READY and BACKLOG have no value yet: an empty cell, as kubectl prints a null.
    expect(row).toEqual({ NAME: "tw", READY: "", DESIRED: "2", TASKS: '["resize"]', BACKLOG: "", MIN: "1", MAX: "5", AGE: expect.stringMatching(/^\d+s$/) });
    expect(await run("get", "tw", "tw")).not.toContain("MIN");
  });

  it("kubectl get pods -w prints each change as a row of the pod's Table", async () => {
    const kubeconfig = await fake.writeKubeconfig(undefined, NS);
    const child = spawn(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(dirname(kubeconfig), "cache"), "get", "pods", "-l", "app=watched", "-w"]);
    try {
      let out = "";
      const running = new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (/1\/1\s+Running/.test(out)) resolve();
        });
        child.on("exit", (code) => reject(new Error(`kubectl get -w exited (${String(code)}): ${out}`)));
      });
      // The watch is open once kubectl has listed (an empty list prints nothing): then the Deployment comes.
      await waitFor("kubectl's watch of pods", () => fake.requests.some((r) => r.path === `/api/v1/namespaces/${NS}/pods` && r.query.watch === "true" && r.query.labelSelector === "app=watched"));
      await apps.createNamespacedDeployment({ namespace: NS, body: deployment("watched", 1) });
      await running;
      // Each row is printed as it comes, in its own widths: split on spaces (no cell of a pod row is empty).
      const [header, ...rows] = out.trim().split("\n").map((l) => l.split(/\s+/));
      expect(header).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
      expect(rows.map((r) => r[2])).toEqual(expect.arrayContaining(["Pending", "ContainerCreating", "Running"]));
    } finally {
      child.kill();
    }
    await apps.deleteNamespacedDeployment({ name: "watched", namespace: NS });
  });

  it("deleting the Deployment garbage-collects its ReplicaSets and their pods", async () => {
    await apps.deleteNamespacedDeployment({ name: "web", namespace: NS });
    await waitFor("web's ReplicaSets and pods to be gone", async () => (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=web" })).items.length === 0 && (await podsOf("web")).length === 0);
    // The other Deployment's pods are left alone.
    expect(await livePods("probe")).toHaveLength(1);
  });
});

describe("workloads in the Kubernetes stand-in with a kubelet hook", () => {
  let fake: FakeKube;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  const NS = "hooked";
  const started: string[] = [];
  const stopped: { name: string; grace: number }[] = [];
  /** Per pod name prefix (or, for starts, `image:` and the first container's image): hold the hook's start or stop until the test says. */
  const holdStart = new Map<string, Promise<void>>();
  const holdStop = new Map<string, Promise<void>>();
  const held = (m: Map<string, Promise<void>>, pod: Obj): Promise<void> | undefined => {
    const name = String((pod.metadata as Obj).name);
    const image = String(((pod.spec as Obj).containers as Obj[])[0]!.image);
    return [...m].find(([k]) => name.startsWith(k) || k === `image:${image}`)?.[1];
  };
  const hook: KubeletHook = {
    start: async (pod) => {
      started.push(String((pod.metadata as Obj).name));
      await held(holdStart, pod);
    },
    stop: async (pod, grace) => {
      stopped.push({ name: String((pod.metadata as Obj).name), grace });
      await held(holdStop, pod);
    },
  };
  const replicaSets = async (app: string) => (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: `app=${app}` })).items;
  const podsOf = async (app: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;

  beforeAll(async () => {
    ({ fake, apps, core } = await standIn(NS, { workloads: { kubelet: hook } }));
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("a pod is Running but not Ready while start runs, and Ready when it resolves", async () => {
    const gate = deferred();
    holdStart.set("slow-", gate.promise);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("slow", 1) });
    const [pod] = await waitFor("the slow pod to be started", async () => {
      const pods = await podsOf("slow");
      return pods.length === 1 && started.includes(pods[0]!.metadata!.name!) ? pods : undefined;
    });
    const name = pod!.metadata!.name!;
    const during = await core.readNamespacedPod({ name, namespace: NS });
    expect(during.status?.phase).toBe("Running");
    expect(ready(during)).toBe(false);
    expect(during.status?.conditions?.find((c) => c.type === "Ready")?.reason).toBe("ContainersNotReady");
    expect(columns(await (await kubectlFor(fake, NS))("get", "pod", name))).toEqual([{ NAME: name, READY: "0/1", STATUS: "Running", RESTARTS: "0", AGE: expect.stringMatching(/^\d+s$/) }]);
    expect((await apps.readNamespacedDeployment({ name: "slow", namespace: NS })).status?.readyReplicas ?? 0).toBe(0);
    gate.resolve();
    await waitFor("the slow pod to be ready", async () => ready(await core.readNamespacedPod({ name, namespace: NS })));
    await waitFor("the deployment to count it", async () => (await apps.readNamespacedDeployment({ name: "slow", namespace: NS })).status?.readyReplicas === 1);
  });

  it("a deleted pod lingers Terminating, counted out of the ReplicaSet and replaced, until the hook's stop (with the pod's grace period) resolves", async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("graceful", 2, { grace: 7 }) });
    await waitFor("2 ready graceful pods", async () => (await apps.readNamespacedDeployment({ name: "graceful", namespace: NS })).status?.readyReplicas === 2);
    const gate = deferred();
    holdStop.set("graceful-", gate.promise);
    const [victim] = names(await podsOf("graceful"));
    await core.deleteNamespacedPod({ name: victim!, namespace: NS });
    await waitFor("the hook's stop to be called", () => stopped.some((s) => s.name === victim));
    expect(stopped.find((s) => s.name === victim)?.grace).toBe(7);
    const terminating = await core.readNamespacedPod({ name: victim!, namespace: NS });
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    expect(terminating.metadata?.deletionGracePeriodSeconds).toBe(7);
    expect(columns(await (await kubectlFor(fake, NS))("get", "pod", victim!))[0]?.STATUS).toBe("Terminating");
    // The ReplicaSet no longer counts it and has made a replacement, while it is still there.
    await waitFor("a replacement pod, ready", async () => (await podsOf("graceful")).filter((p) => !p.metadata?.deletionTimestamp && ready(p)).length === 2);
    expect(names(await podsOf("graceful"))).toContain(victim);
    const rs = (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=graceful" })).items[0]!;
    expect(rs.status?.replicas).toBe(2);

    // A delete with its own grace period passes that one on.
    const [second] = names((await podsOf("graceful")).filter((p) => !p.metadata?.deletionTimestamp));
    await core.deleteNamespacedPod({ name: second!, namespace: NS, gracePeriodSeconds: 3 });
    await waitFor("the second stop", () => stopped.some((s) => s.name === second));
    expect(stopped.find((s) => s.name === second)?.grace).toBe(3);

    gate.resolve();
    await waitFor("both pods to be gone", async () => !names(await podsOf("graceful")).some((n) => n === victim || n === second));
    await waitFor("2 ready graceful pods again", async () => (await podsOf("graceful")).filter((p) => !p.metadata?.deletionTimestamp && ready(p)).length === 2);
    holdStop.delete("graceful-");
  });

  it("a forced delete (grace 0) removes the pod at once, and its life still ends with stop(pod, 0)", async () => {
    const [victim] = names((await podsOf("graceful")).filter((p) => !p.metadata?.deletionTimestamp));
    await core.deleteNamespacedPod({ name: victim!, namespace: NS, gracePeriodSeconds: 0 });
    expect(names(await podsOf("graceful"))).not.toContain(victim);
    await waitFor("the forced pod's stop", () => stopped.some((s) => s.name === victim));
    expect(stopped.find((s) => s.name === victim)?.grace).toBe(0);
    await waitFor("2 ready graceful pods again", async () => (await podsOf("graceful")).filter((p) => ready(p)).length === 2);
  });

  it("a start that fails marks the pod Failed with the message; the stand-in keeps serving", async () => {
    holdStart.set("broken-", Promise.reject(new Error("worker exited with code 3")));
    // Keep the rejection from counting as unhandled before the hook awaits it.
    holdStart.get("broken-")!.catch(() => undefined);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment("broken", 1) });
    const failed = await waitFor("a failed broken pod", async () => (await podsOf("broken")).find((p) => p.status?.phase === "Failed"));
    expect(failed.status?.message).toContain("worker exited with code 3");
    expect(ready(failed)).toBe(false);
    // Scaled to 0 and deleted, the failed pods' lives still end with stop.
    holdStart.delete("broken-");
    await apps.deleteNamespacedDeployment({ name: "broken", namespace: NS });
    await waitFor("the broken pods to be gone", async () => (await podsOf("broken")).length === 0);
    expect(stopped.some((s) => s.name === failed.metadata!.name)).toBe(true);
    expect((await apps.readNamespacedDeployment({ name: "slow", namespace: NS })).status?.readyReplicas).toBe(1);
  });

  it("RollingUpdate (maxSurge 1, maxUnavailable 0): one new pod at a time, an old one goes only once a new one is ready", async () => {
    const roll = deployment("roll", 3);
    (roll.spec as Obj).strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
    await apps.createNamespacedDeployment({ namespace: NS, body: roll });
    await waitFor("3 ready roll pods", async () => (await apps.readNamespacedDeployment({ name: "roll", namespace: NS })).status?.availableReplicas === 3);
    // Every state the ReplicaSets pass through, as the store saw them.
    const specTotals: number[] = [];
    const availableTotals: number[] = [];
    const rsState = new Map<string, { spec: number; available: number }>();
    for (const rs of await replicaSets("roll")) rsState.set(rs.metadata!.name!, { spec: rs.spec!.replicas!, available: rs.status!.availableReplicas! });
    const stopObserving = fake.observe((e) => {
      if (e.resource.kind !== "ReplicaSet" || ((e.object.metadata as Obj).labels as Obj).app !== "roll") return;
      const name = String((e.object.metadata as Obj).name);
      if (e.type === "DELETED") rsState.delete(name);
      else rsState.set(name, { spec: Number((e.object.spec as Obj).replicas ?? 0), available: Number((e.object.status as Obj | undefined)?.availableReplicas ?? 0) });
      specTotals.push([...rsState.values()].reduce((n, r) => n + r.spec, 0));
      availableTotals.push([...rsState.values()].reduce((n, r) => n + r.available, 0));
    });
    try {
      const gate = deferred();
      holdStart.set("image:worker:2", gate.promise);
      await apps.patchNamespacedDeployment({ name: "roll", namespace: NS, body: { spec: { template: { spec: { containers: [{ name: "worker", image: "worker:2" }] } } } } }, strategic);
      const [first] = await waitFor("the first new pod to be starting", async () => {
        const pods = (await podsOf("roll")).filter((p) => p.spec?.containers[0]?.image === "worker:2" && started.includes(p.metadata!.name!));
        return pods.length ? pods : undefined;
      });
      // While it is not ready, the surge is used up and nothing old may go.
      const during = await replicaSets("roll");
      expect(during.map((r) => [r.spec?.template?.spec?.containers[0]?.image, r.spec?.replicas]).sort()).toEqual([
        ["worker:1", 3],
        ["worker:2", 1],
      ]);
      expect((await podsOf("roll")).filter((p) => !p.metadata?.deletionTimestamp)).toHaveLength(4);
      const d = await apps.readNamespacedDeployment({ name: "roll", namespace: NS });
      expect(d.status).toMatchObject({ replicas: 4, updatedReplicas: 1, availableReplicas: 3, unavailableReplicas: 1 });
      expect(d.status?.conditions?.find((c) => c.type === "Progressing")?.reason).toBe("ReplicaSetUpdated");
      expect(first!.metadata!.name).toMatch(/^roll-/);

      gate.resolve();
      await waitFor("the rollout to finish", async () => {
        const s = (await apps.readNamespacedDeployment({ name: "roll", namespace: NS })).status;
        return s?.updatedReplicas === 3 && s.availableReplicas === 3 && s.replicas === 3 && s.conditions?.some((c) => c.type === "Progressing" && c.reason === "NewReplicaSetAvailable");
      });
      expect((await replicaSets("roll")).map((r) => [r.spec?.template?.spec?.containers[0]?.image, r.spec?.replicas]).sort()).toEqual([
        ["worker:1", 0],
        ["worker:2", 3],
      ]);
      // Never more than replicas + maxSurge pods asked for, never fewer than replicas - maxUnavailable available.
      expect(Math.max(...specTotals)).toBe(4);
      expect(Math.min(...availableTotals)).toBeGreaterThanOrEqual(3);
    } finally {
      stopObserving();
      holdStart.delete("image:worker:2");
    }
  });

  it("Recreate: the old pods are stopped and gone before the new ReplicaSet is made", async () => {
    const re = deployment("re", 2);
    (re.spec as Obj).strategy = { type: "Recreate" };
    await apps.createNamespacedDeployment({ namespace: NS, body: re });
    await waitFor("2 ready re pods", async () => (await apps.readNamespacedDeployment({ name: "re", namespace: NS })).status?.readyReplicas === 2);
    const oldPods = names(await podsOf("re"));
    const gate = deferred();
    holdStop.set("re-", gate.promise);
    try {
      await apps.patchNamespacedDeployment({ name: "re", namespace: NS, body: { spec: { template: { spec: { containers: [{ name: "worker", image: "worker:2" }] } } } } }, strategic);
      await waitFor("both old pods to be stopping", () => oldPods.every((n) => stopped.some((s) => s.name === n)));
      // They linger Terminating, so no new ReplicaSet yet.
      expect((await replicaSets("re")).map((r) => r.spec?.replicas)).toEqual([0]);
      expect(names(await podsOf("re"))).toEqual(oldPods);
      gate.resolve();
      await waitFor("2 ready pods of the new template", async () => (await podsOf("re")).filter((p) => p.spec?.containers[0]?.image === "worker:2" && ready(p)).length === 2);
      expect((await podsOf("re")).some((p) => oldPods.includes(p.metadata!.name!))).toBe(false);
    } finally {
      holdStop.delete("re-");
    }
  });

  it("close() stops every pod's life first, with grace 0", async () => {
    const live = names((await podsOf("slow")).concat(await podsOf("graceful"), await podsOf("roll"), await podsOf("re")));
    expect(live).toHaveLength(8);
    await fake.close();
    for (const name of live) expect(stopped.find((s) => s.name === name)).toEqual({ name, grace: 0 });
  });
});

// The victim order itself, rule by rule, on pods as the ReplicaSet controller would see them (no server needed).
describe("the ReplicaSet controller's scale-down order (podsToDelete)", () => {
  const NOW = new Date("2026-01-01T12:00:00Z");
  const ago = (s: number): string => new Date(NOW.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const pod = (name: string, o: { node?: string; phase?: string; ready?: boolean; readySince?: number; cost?: string; restarts?: number; age?: number; uid?: string } = {}): Obj => ({
    metadata: { name, uid: o.uid ?? name, creationTimestamp: ago(o.age ?? 1000), ...(o.cost !== undefined ? { annotations: { [COST]: o.cost } } : {}) },
    spec: { nodeName: o.node ?? "n1" },
    status: {
      phase: o.phase ?? "Running",
      conditions: [{ type: "Ready", status: (o.ready ?? true) ? "True" : "False", lastTransitionTime: ago(o.readySince ?? 500) }],
      containerStatuses: [{ name: "c", restartCount: o.restarts ?? 0 }],
    },
  });
  const order = (pods: Obj[], related?: Obj[]): string[] => podsToDelete(pods, pods.length - 1, related, NOW).map((p) => String((p.metadata as Obj).name));

  it("unassigned, then Pending, Unknown, Running; not ready before ready; then lower cost", () => {
    const pods = [pod("ready-cheap", { cost: "-1" }), pod("ready"), pod("notready", { ready: false, cost: "99" }), pod("unknown", { phase: "Unknown" }), pod("pending", { phase: "Pending", ready: false }), pod("unassigned", { node: "" })];
    expect(order(pods)).toEqual(["unassigned", "pending", "unknown", "notready", "ready-cheap"]);
  });

  it("equal costs: more co-located related pods first, then ready for less time (log2 buckets, UID within one), more restarts, newer", () => {
    const crowded = [pod("a", { node: "busy" }), pod("b", { node: "calm" })];
    expect(order(crowded, [...crowded, pod("sibling", { node: "busy" })])).toEqual(["a"]);
    // Ready 10 s and 1000 s ago: far apart on the log scale, the more recently ready goes first.
    expect(order([pod("old", { readySince: 1000 }), pod("fresh", { readySince: 10 })])).toEqual(["fresh"]);
    // 1000 s and 1001 s: the same bucket, so the smaller UID goes first, whichever is more recent.
    expect(order([pod("x", { readySince: 1000, uid: "b" }), pod("y", { readySince: 1001, uid: "a" })])).toEqual(["y"]);
    expect(order([pod("calm"), pod("crashy", { restarts: 4 })])).toEqual(["crashy"]);
    expect(order([pod("elder", { age: 5000 }), pod("young", { age: 10 })])).toEqual(["young"]);
  });
});
