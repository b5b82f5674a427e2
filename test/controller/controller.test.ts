import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { waitFor, type Child } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { startController, startStubApi, taskRun, taskWorker, type StubApi } from "./support.js";

const NS = "team-a";
const FINALIZER = "offload.dev/cancel-run";
const finalizers = (o: Obj | undefined): unknown => (o?.metadata as Obj | undefined)?.finalizers;

type Dep = {
  metadata: { ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[]; labels?: Record<string, string>; generation?: number; annotations?: Record<string, string> };
  spec: {
    replicas: number;
    revisionHistoryLimit?: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: { containers: { name: string; image: string; env: { name: string; value?: string; valueFrom?: unknown }[]; readinessProbe: unknown; livenessProbe: unknown; ports: unknown[] }[]; terminationGracePeriodSeconds: number };
    };
  };
};
type Status = { replicas?: number; readyReplicas?: number; selector?: string; observedGeneration?: number; conditions?: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[] };

describe("offload-controller against the fake API server", () => {
  let fake: FakeKube;
  let api: StubApi;
  let ctl: Child | undefined;
  let custom: CustomObjectsApi;
  /** The Degraded condition's time as the TaskWorker's first status write set it. */
  let degradedSince: string | undefined;

  const dep = (name: string): Dep | undefined => fake.get("deployments", NS, name) as unknown as Dep | undefined;
  const twStatus = (name: string): Status => ((fake.get("taskworkers", NS, name)?.status ?? {}) as Status);
  const cond = (s: { conditions?: { type: string }[] }, type: string) => s.conditions?.find((c) => c.type === type) as { status: string; reason: string; message: string; lastTransitionTime: string } | undefined;
  const events = () => fake.list("events.events.k8s.io", NS);
  const env = (d: Dep): Record<string, unknown> => Object.fromEntries(d.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value ?? e.valueFrom]));

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    api = await startStubApi();
    custom = fake.kubeConfig().makeApiClient(CustomObjectsApi);
    ctl = await startController(fake, "ctl-main", {
      OFFLOAD_API_URL: api.url,
      OFFLOAD_API_TOKEN: "s3cret",
      OFFLOAD_API_TOKEN_SECRET: "offload-api-token",
      OFFLOAD_NATS_URL: "nats://nats.offload-system:4222",
    });
    await ctl.waitForOutput("controller acting", 20_000);
  });

  afterAll(async () => {
    await ctl?.stop(5000);
    if (process.env.SHOW_CONTROLLER_LOG) process.stderr.write(ctl?.output() ?? "");
    await api?.stop();
    await fake?.close();
  });

  it("creates a Deployment with the worker pod spec and an owner reference", async () => {
    const tw = fake.create(
      taskWorker("images", NS, {
        image: "registry.example/images:1.2",
        module: "./dist/tasks.js",
        tasks: ["resize-image", "thumbnail"],
        replicas: 2,
        concurrency: 4,
        drainSeconds: 60,
        env: [{ name: "LOG_LEVEL", value: "debug" }],
      }),
    );
    const d = await waitFor("the Deployment", () => dep("images"));
    expect(d.metadata.ownerReferences).toEqual([
      { apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", name: "images", uid: (tw.metadata as Obj).uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(d.metadata.labels).toMatchObject({ "app.kubernetes.io/managed-by": "offload-controller", "offload.dev/taskworker": "images" });
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/name": "offload-worker", "app.kubernetes.io/instance": "images" });
    const c = d.spec.template.spec.containers[0]!;
    expect(c.image).toBe("registry.example/images:1.2");
    expect(env(d)).toMatchObject({
      OFFLOAD_MODULE: "./dist/tasks.js",
      OFFLOAD_TASKS: "resize-image,thumbnail",
      OFFLOAD_CONCURRENCY: "4",
      OFFLOAD_DRAIN_SECONDS: "60",
      OFFLOAD_NATS_URL: "nats://nats.offload-system:4222",
      OFFLOAD_API_URL: api.url,
      OFFLOAD_API_TOKEN: { secretKeyRef: { name: "offload-api-token", key: "token" } },
      LOG_LEVEL: "debug",
    });
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(60);
    expect(fake.managers("deployments", NS, "images")["offload-controller"]).toContain("spec.replicas");

    const st = await waitFor("TaskWorker status", () => (twStatus("images").selector ? twStatus("images") : undefined));
    expect(st.selector).toBe("app.kubernetes.io/instance=images,app.kubernetes.io/name=offload-worker");
    expect(st.observedGeneration).toBe(1);
    expect(cond(st, "Ready")).toMatchObject({ status: "False", reason: "ReplicasNotReady" });
    expect(cond(st, "Degraded")).toMatchObject({ status: "False" });
    degradedSince = cond(st, "Degraded")!.lastTransitionTime;
    await waitFor("a Created event", () => events().find((e) => e.reason === "Created" && (e.regarding as Obj).name === "images"));
  });

  it("follows the Deployment's readiness into the TaskWorker's status", async () => {
    // As the first status write set it: a reconcile on an informer cache that has not seen that write yet must not
    // stamp it anew, and neither must the readiness changes below.
    const before = cond(twStatus("images"), "Degraded")!.lastTransitionTime;
    expect(before).toBe(degradedSince);
    fake.patchStatus("deployments", NS, "images", { observedGeneration: dep("images")!.metadata.generation, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1 });
    await waitFor("readyReplicas 1", () => twStatus("images").readyReplicas === 1);
    fake.patchStatus("deployments", NS, "images", { readyReplicas: 2, availableReplicas: 2 });
    const st = await waitFor("Ready=True", () => (cond(twStatus("images"), "Ready")?.status === "True" ? twStatus("images") : undefined));
    expect(st).toMatchObject({ replicas: 2, readyReplicas: 2 });
    expect(cond(st, "Ready")!.reason).toBe("AllReplicasReady");
    expect(cond(st, "Progressing")).toMatchObject({ status: "False", reason: "RolloutComplete" });
    expect(cond(st, "Degraded")!.lastTransitionTime).toBe(before); // status unchanged: no transition
  });

  it("kubectl scale (the scale subresource) changes the Deployment's replicas and nothing else", async () => {
    const before = dep("images")!;
    const scale = (await custom.getNamespacedCustomObjectScale({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", name: "images" })) as { spec: { replicas: number }; status: { selector: string } };
    expect(scale.spec.replicas).toBe(2);
    expect(scale.status.selector).toBe("app.kubernetes.io/instance=images,app.kubernetes.io/name=offload-worker");
    await custom.patchNamespacedCustomObjectScale(
      { group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", name: "images", body: { spec: { replicas: 4 } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const after = await waitFor("the Deployment to scale", () => (dep("images")?.spec.replicas === 4 ? dep("images") : undefined));
    expect({ ...after.spec, replicas: 2 }).toEqual(before.spec);
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    await waitFor("a Scaled event", () => events().find((e) => e.reason === "Scaled"));
    await waitFor("Ready=False at 2/4", () => cond(twStatus("images"), "Ready")?.status === "False");
  });

  it("keeps an unrelated edit by another field manager across reconciles", async () => {
    fake.patch("deployments", NS, "images", { spec: { revisionHistoryLimit: 3, template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z" } } } } }, "kubectl-edit");
    // A spec change makes the controller apply again.
    fake.patch("taskworkers", NS, "images", { spec: { concurrency: 8 } });
    const d = await waitFor("the new concurrency", () => (dep("images") && env(dep("images")!).OFFLOAD_CONCURRENCY === "8" ? dep("images") : undefined));
    expect(d.spec.revisionHistoryLimit).toBe(3);
    expect(d.spec.template.metadata.annotations).toEqual({ "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z" });
    expect(fake.managers("deployments", NS, "images")["kubectl-edit"]).toEqual(["spec.revisionHistoryLimit", "spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt"]);
    const gen = (fake.get("taskworkers", NS, "images")!.metadata as Obj).generation;
    await waitFor("observedGeneration to follow", () => twStatus("images").observedGeneration === gen);
  });

  it("recovers when a watch ends with 410 Gone (relists and keeps working)", async () => {
    const lists = () => fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/taskworkers") && !r.query.watch).length;
    const before = lists();
    fake.expireWatches();
    await waitFor("a relist", () => lists() > before);
    await waitFor("the watches to reopen", () => fake.watchCount >= 4); // TaskWorkers, TaskRuns, TaskSchedules, Deployments
    fake.patch("taskworkers", NS, "images", { spec: { replicas: 1 } });
    await waitFor("the Deployment to follow after the relist", () => dep("images")?.spec.replicas === 1);
  });

  it("survives an API server restart", async () => {
    await fake.stop();
    await new Promise((r) => setTimeout(r, 300));
    await fake.start();
    fake.create(taskWorker("after-restart", NS, { image: "img:1", module: "m.js", replicas: 1 }));
    await waitFor("a Deployment made after the restart", () => dep("after-restart"), 30_000);
  });

  it("submits a TaskRun once and mirrors the run into its status", async () => {
    fake.create(taskRun("backfill-1", NS, { task: "resize-image", parameters: { url: "https://x/y.png", width: 200 } }));
    const st = await waitFor("COMPLETED", () => {
      const s = fake.get("taskruns", NS, "backfill-1")?.status as { state?: string } | undefined;
      return s?.state === "COMPLETED" ? (s as Record<string, unknown>) : undefined;
    });
    const uid = (fake.get("taskruns", NS, "backfill-1")!.metadata as Obj).uid;
    const posts = api.posts.filter((p) => p.idempotencyKey === uid);
    expect(posts).toHaveLength(1);
    // The run is recorded in the TaskRun's namespace, where its reads, cancel and retry are authorized.
    expect(posts[0]).toMatchObject({ task: "resize-image", parameters: { url: "https://x/y.png", width: 200 }, namespace: NS, auth: "Bearer s3cret" });
    expect(st).toMatchObject({ attempts: 1, runId: expect.stringMatching(/^run-/) });
    expect(typeof st.startedAt).toBe("string");
    expect(typeof st.finishedAt).toBe("string");
    expect((st.resultSummary as string).length).toBeLessThanOrEqual(256);
    expect(st.resultSummary as string).toMatch(/^\{"echoed":\{"url"/);
    expect(cond(st as Status, "Succeeded")).toMatchObject({ status: "True", reason: "Completed" });
    expect(cond(st as Status, "Accepted")).toMatchObject({ status: "True", reason: "Submitted" });
    // Nothing left to cancel: the finalizer it was submitted with goes.
    await waitFor("the finalizer to go", () => finalizers(fake.get("taskruns", NS, "backfill-1")) === undefined);
  });

  it("deleting a TaskRun whose run is going cancels the run; while the run API is unreachable it keeps trying, and the TaskRun stays", async () => {
    fake.create(taskRun("long-1", NS, { task: "slow-task", parameters: {} }));
    const running = await waitFor("RUNNING", () => {
      const o = fake.get("taskruns", NS, "long-1");
      return (o?.status as { state?: string } | undefined)?.state === "RUNNING" ? o : undefined;
    });
    expect(finalizers(running)).toEqual([FINALIZER]);
    const runId = (running!.status as { runId: string }).runId;
    const cancel = `POST /v1/runs/${runId}/cancel`;

    api.down = true;
    await custom.deleteNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskruns", name: "long-1" });
    await waitFor("a few cancel attempts", () => api.refused.filter((r) => r === cancel).length >= 3);
    const held = fake.get("taskruns", NS, "long-1")!.metadata as Obj;
    expect(held.deletionTimestamp).toBeTruthy();
    expect(held.finalizers).toEqual([FINALIZER]);
    expect(api.cancels).not.toContain(runId);

    api.down = false;
    await waitFor("the TaskRun to go once its run is cancelled", () => !fake.get("taskruns", NS, "long-1"), 30_000);
    expect(api.cancels.filter((id) => id === runId)).toHaveLength(1);
    expect(events().find((e) => e.reason === "Cancelled" && (e.regarding as Obj).name === "long-1")).toMatchObject({ type: "Normal" });
  });

  it("marks a TaskRun the run API refuses Accepted=False/Invalid, without retrying", async () => {
    fake.create(taskRun("bad-1", NS, { task: "rejected-task", parameters: {} }));
    const c = await waitFor("Accepted=False", () => cond((fake.get("taskruns", NS, "bad-1")?.status ?? {}) as Status, "Accepted"));
    expect(c).toMatchObject({ status: "False", reason: "Invalid" });
    expect(c.message).toContain("no worker serves task rejected-task");
    // Another change to the object reconciles it again: still no second submit.
    fake.patch("taskruns", NS, "bad-1", { metadata: { labels: { touched: "yes" } } });
    // A task name the CRD's pattern refuses never reaches the controller: the API server answers 422, as a real one does.
    expect(() => fake.create(taskRun("bad-2", NS, { task: "Not A Task!" }))).toThrow(/spec\.task/);
    expect(fake.get("taskruns", NS, "bad-2")).toBeUndefined();
    expect(api.posts.filter((p) => p.task === "rejected-task")).toHaveLength(1);
    // No run was made: nothing to cancel, no finalizer.
    await waitFor("bad-1 without the finalizer", () => finalizers(fake.get("taskruns", NS, "bad-1")) === undefined);
    await waitFor("a Rejected event", () => events().find((e) => e.reason === "Rejected" && (e.regarding as Obj).name === "bad-1"));
  });

  it("an invalid spec is refused by the API server; a Deployment it does not own is reported as Degraded, touching nothing", async () => {
    // The CRD's validation rule refuses a mount of a volume that does not exist, as a real API server does (422).
    expect(() => fake.create(taskWorker("bad-mounts", NS, { image: "img:1", module: "m.js", podTemplate: { volumeMounts: [{ name: "nope", mountPath: "/x" }] } }))).toThrow(/volumes/);
    expect(fake.get("taskworkers", NS, "bad-mounts")).toBeUndefined();
    expect(dep("bad-mounts")).toBeUndefined();

    const someoneElses = { selector: { matchLabels: { app: "taken" } }, template: { metadata: { labels: { app: "taken" } }, spec: { containers: [{ name: "app", image: "other:1" }] } } };
    fake.create({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "taken", namespace: NS }, spec: { replicas: 9, ...someoneElses } }, "someone-else");
    fake.create(taskWorker("taken", NS, { image: "img:1", module: "m.js", replicas: 1 }));
    const c2 = await waitFor("DeploymentConflict", () => cond(twStatus("taken"), "Degraded"));
    expect(c2).toMatchObject({ status: "True", reason: "DeploymentConflict" });
    expect(dep("taken")!.spec.replicas).toBe(9);
    expect(dep("taken")!.metadata.ownerReferences).toBeUndefined();
  });

  it("deleting the TaskWorker deletes its Deployment (garbage collection)", async () => {
    fake.delete("taskworkers", NS, "images");
    await waitFor("the Deployment to go", () => !dep("images"));
  });

  it("on SIGTERM releases the Lease and exits 0", async () => {
    const lease = fake.get("leases", "offload-system", "offload-controller") as { spec: { holderIdentity?: string } };
    expect(lease.spec.holderIdentity).toBe("ctl-main");
    const code = await ctl!.stop(8000);
    expect(code).toBe(0);
    const after = fake.get("leases", "offload-system", "offload-controller") as { spec: { holderIdentity?: string } };
    expect(after.spec.holderIdentity).toBeUndefined();
  });
});

describe("deleting TaskRuns: a run API that stays unreachable, and no run API (with kubernetes auth for worker pods)", () => {
  let fake: FakeKube;
  let api: StubApi;
  const ctls: Child[] = [];
  const finalizers = (o: Obj | undefined): unknown => (o?.metadata as Obj | undefined)?.finalizers;
  const del = (namespace: string, name: string) =>
    fake.kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace, plural: "taskruns", name });

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    api = await startStubApi();
    const common = { OFFLOAD_LEADER_ELECTION: "false" };
    ctls.push(await startController(fake, "ctl-give-up", { ...common, OFFLOAD_WATCH_NAMESPACE: "give-up", OFFLOAD_API_URL: api.url, OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS: "1" }));
    // Also configured for the run API's kubernetes auth, which only changes the worker pods it makes.
    ctls.push(await startController(fake, "ctl-no-api", { ...common, OFFLOAD_WATCH_NAMESPACE: "no-api", OFFLOAD_AUTH: "kubernetes", OFFLOAD_AUTH_AUDIENCE: "tasks.example.com", OFFLOAD_API_TOKEN_SECRET: "offload-api-token" }));
    await Promise.all(ctls.map((c) => c.waitForOutput("controller acting", 20_000)));
  });

  afterAll(async () => {
    await Promise.all(ctls.map((c) => c.stop(5000)));
    if (process.env.SHOW_CONTROLLER_LOG) for (const c of ctls) process.stderr.write(c.output());
    await api?.stop();
    await fake?.close();
  });

  it("gives up on cancelling after OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS and lets the TaskRun go, with a Warning event", async () => {
    fake.create(taskRun("stuck", "give-up", { task: "slow-task" }));
    const runId = await waitFor("RUNNING", () => {
      const s = fake.get("taskruns", "give-up", "stuck")?.status as { state?: string; runId?: string } | undefined;
      return s?.state === "RUNNING" ? s.runId : undefined;
    });
    api.down = true;
    await del("give-up", "stuck");
    await waitFor("the TaskRun to go", () => !fake.get("taskruns", "give-up", "stuck"), 30_000);
    expect(api.refused).toContain(`POST /v1/runs/${runId}/cancel`);
    expect(api.cancels).toEqual([]);
    const warning = fake.list("events.events.k8s.io", "give-up").find((e) => e.reason === "CancelFailed");
    expect(warning).toMatchObject({ type: "Warning", note: expect.stringContaining(`could not cancel run ${runId}`) });
  });

  it("without OFFLOAD_API_URL, a TaskRun gets no finalizer and deletes at once", async () => {
    fake.create(taskRun("waits", "no-api", { task: "anything" }));
    await waitFor("ApiNotConfigured", () => (fake.get("taskruns", "no-api", "waits")?.status as Status | undefined)?.conditions?.find((c) => c.reason === "ApiNotConfigured"));
    expect(finalizers(fake.get("taskruns", "no-api", "waits"))).toBeUndefined();
    await del("no-api", "waits");
    expect(fake.get("taskruns", "no-api", "waits")).toBeUndefined();
  });

  it("with OFFLOAD_AUTH=kubernetes, worker pods get a projected token for the audience and no shared token, locked down as stored by the API server", async () => {
    fake.create(taskWorker("kube-auth", "no-api", { image: "img:1", module: "m.js", podTemplate: { serviceAccountName: "tasks", securityContext: { runAsUser: 2000 } } }));
    const d = await waitFor("the Deployment", () => fake.get("deployments", "no-api", "kube-auth") as unknown as Dep | undefined);
    const pod = d.spec.template.spec as unknown as Record<string, unknown> & { containers: { env: { name: string; value?: string }[]; volumeMounts: unknown[]; securityContext: Record<string, unknown> }[]; volumes: unknown[] };
    const c = pod.containers[0]!;
    expect(pod.volumes).toContainEqual({ name: "offload-token", projected: { sources: [{ serviceAccountToken: { audience: "tasks.example.com", expirationSeconds: 3600, path: "token" } }] } });
    expect(c.volumeMounts).toContainEqual({ name: "offload-token", mountPath: "/var/run/secrets/offload", readOnly: true });
    expect(c.env.find((e) => e.name === "OFFLOAD_TOKEN_FILE")?.value).toBe("/var/run/secrets/offload/token");
    expect(c.env.map((e) => e.name)).not.toContain("OFFLOAD_API_TOKEN");
    expect(pod.serviceAccountName).toBe("tasks");
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 2000, runAsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
  });
});
