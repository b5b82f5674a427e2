import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiException, AppsV1Api, CustomObjectsApi, PatchStrategy, Watch, setHeaderOptions } from "@kubernetes/client-node";
import { waitFor } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "./index.js";

// The stand-in API server itself: if these fail, the controller tests would fail for the wrong reason.
describe("fake Kubernetes API server", () => {
  let fake: FakeKube;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  const NS = "fk";
  const deployment = (replicas: number): Obj => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "d1", namespace: NS, labels: { a: "1" } },
    spec: { replicas, selector: { matchLabels: { a: "1" } }, template: { metadata: { labels: { a: "1" } }, spec: { containers: [{ name: "c", image: "i:1" }] } } },
  });
  const apply = (body: Obj, manager: string, force: boolean) =>
    apps.patchNamespacedDeployment({ name: "d1", namespace: NS, body, fieldManager: manager, force }, setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply));
  const code = async (p: Promise<unknown>): Promise<number> => {
    try {
      await p;
      return 200;
    } catch (err) {
      return err instanceof ApiException ? err.code : -1;
    }
  };

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    fake.ensureNamespace(NS);
    const kc = fake.kubeConfig();
    apps = kc.makeApiClient(AppsV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("server-side apply creates, tracks managers, and reports conflicts unless forced", async () => {
    const created = await apply(deployment(2), "mgr-a", false);
    expect(created.metadata?.generation).toBe(1);
    expect(await code(apply(deployment(3), "mgr-b", false))).toBe(409);
    const forced = await apply(deployment(3), "mgr-b", true);
    expect(forced.spec?.replicas).toBe(3);
    expect(fake.managers("deployments", NS, "d1")["mgr-b"]).toContain("spec.replicas");
    expect(fake.managers("deployments", NS, "d1")["mgr-a"]).not.toContain("spec.replicas");
    // Same value: shared. Containers are an associative list (by name): owned field by field, as in managedFields.
    expect(fake.managers("deployments", NS, "d1")["mgr-a"]).toContain('spec.template.spec.containers[name="c"].image');
  });

  it("server-side apply merges containers by name: another manager's container and env entry survive an apply that leaves them out", async () => {
    const base = deployment(1);
    const tpl = (containers: Obj[]): Obj => ({ ...base, metadata: { name: "d2", namespace: NS, labels: { a: "1" } }, spec: { ...(base.spec as Obj), template: { metadata: { labels: { a: "1" } }, spec: { containers } } } });
    const applyD2 = (body: Obj, manager: string) =>
      apps.patchNamespacedDeployment({ name: "d2", namespace: NS, body, fieldManager: manager, force: true }, setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply));
    await applyD2(tpl([{ name: "app", image: "app:1", env: [{ name: "A", value: "1" }] }]), "ctl");
    await applyD2(tpl([{ name: "app", env: [{ name: "B", value: "2" }] }, { name: "sidecar", image: "side:1" }]), "ops");
    const after = await applyD2(tpl([{ name: "app", image: "app:2", env: [{ name: "A", value: "1" }] }]), "ctl");
    const containers = after.spec!.template.spec!.containers;
    expect(containers.map((c) => c.name)).toEqual(["app", "sidecar"]);
    expect(containers[0]).toMatchObject({ image: "app:2", env: [{ name: "A", value: "1" }, { name: "B", value: "2" }] });
    // An env entry ctl stops applying goes (only it owned it); ops' entry and container stay.
    const dropped = await applyD2(tpl([{ name: "app", image: "app:2" }]), "ctl");
    expect(dropped.spec!.template.spec!.containers.map((c) => c.name)).toEqual(["app", "sidecar"]);
    expect(dropped.spec!.template.spec!.containers[0]!.env).toEqual([{ name: "B", value: "2" }]);
  });

  it("a no-op apply changes nothing (same resourceVersion); a field dropped from an apply is removed unless another manager owns it", async () => {
    const before = fake.get("deployments", NS, "d1")!;
    const again = await apply(deployment(3), "mgr-b", true);
    expect(again.metadata?.resourceVersion).toBe((before.metadata as Obj).resourceVersion);
    await apply({ ...deployment(3), spec: { ...(deployment(3).spec as Obj), minReadySeconds: 5 } }, "mgr-b", true);
    expect((fake.get("deployments", NS, "d1")!.spec as Obj).minReadySeconds).toBe(5);
    await apply(deployment(3), "mgr-b", true);
    expect(fake.get("deployments", NS, "d1")!.spec as Obj).not.toHaveProperty("minReadySeconds");
  });

  it("PUT with a stale resourceVersion gets 409; generation moves on spec changes only", async () => {
    const cur = await apps.readNamespacedDeployment({ name: "d1", namespace: NS });
    const gen = cur.metadata!.generation!;
    const stale = { ...cur, metadata: { ...cur.metadata, resourceVersion: "1" } };
    expect(await code(apps.replaceNamespacedDeployment({ name: "d1", namespace: NS, body: stale }))).toBe(409);
    const labelled = await apps.patchNamespacedDeployment({ name: "d1", namespace: NS, body: { metadata: { labels: { extra: "x" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    expect(labelled.metadata?.generation).toBe(gen);
    fake.patchStatus("deployments", NS, "d1", { readyReplicas: 3 });
    expect((fake.get("deployments", NS, "d1")!.metadata as Obj).generation).toBe(gen);
    const scaled = await apps.patchNamespacedDeployment({ name: "d1", namespace: NS, body: { spec: { replicas: 5 } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    expect(scaled.metadata?.generation).toBe(gen + 1);
    expect(scaled.status?.readyReplicas).toBe(3); // writes to the object leave status alone
  });

  it("refuses a Deployment the real server refuses: selector not matching the template, a changed selector (422 with the field)", async () => {
    const bad = deployment(1);
    ((bad.spec as Obj).template as Obj).metadata = { labels: { a: "2" } };
    const err = await apps.createNamespacedDeployment({ namespace: NS, body: { ...bad, metadata: { name: "mismatch", namespace: NS } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<string>).code).toBe(422);
    expect(JSON.parse((err as ApiException<string>).body).details.causes).toEqual([expect.objectContaining({ field: "spec.template.metadata.labels", reason: "FieldValueInvalid" })]);
    const moved = { spec: { selector: { matchLabels: { a: "1", b: "2" } }, template: { metadata: { labels: { a: "1", b: "2" } } } } };
    expect(await code(apps.patchNamespacedDeployment({ name: "d1", namespace: NS, body: moved }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch)))).toBe(422);
  });

  it("validates events.k8s.io/v1 Events as the real server: required reporting fields on create, only the series may change", () => {
    const event = (name: string, extra: Obj = {}): Obj => ({
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name, namespace: NS },
      eventTime: "2025-01-01T00:00:00.000000Z",
      reportingController: "offload.dev/controller",
      reportingInstance: "ctl-1",
      action: "Reconcile",
      reason: "Created",
      type: "Normal",
      note: "made it",
      regarding: { apiVersion: "apps/v1", kind: "Deployment", name: "d1", namespace: NS },
      ...extra,
    });
    expect(() => fake.create(event("no-action", { action: undefined }))).toThrow(/action: Required value/);
    expect(() => fake.create(event("bad-type", { type: "Info" }))).toThrow(/type: .*has invalid value: Info/);
    // Regarding an object without a namespace is allowed only from default or kube-system.
    expect(() => fake.create(event("elsewhere", { regarding: { kind: "Node", name: "n1" } }))).toThrow(/involvedObject\.namespace/);
    fake.create(event("ok"));
    const repeated = fake.patch("events.events.k8s.io", NS, "ok", { series: { count: 2, lastObservedTime: "2025-01-01T00:01:00.000000Z" } });
    expect(repeated.series).toMatchObject({ count: 2 });
    expect(() => fake.patch("events.events.k8s.io", NS, "ok", { note: "changed" })).toThrow(/message: .*field is immutable/);
  });

  it("a Secret's stringData is stored as base64 data; a key that is no config key is refused", () => {
    const secret = fake.create({ apiVersion: "v1", kind: "Secret", metadata: { name: "s1", namespace: NS }, data: { a: "YQ==" }, stringData: { b: "bee" } });
    expect(secret).toMatchObject({ type: "Opaque", data: { a: "YQ==", b: Buffer.from("bee").toString("base64") } });
    expect(secret.stringData).toBeUndefined();
    expect(() => fake.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c1", namespace: NS }, data: { "no/slash": "x" } })).toThrow(/data\[no\/slash\]/);
  });

  it("the scale subresource of a custom resource maps to spec.replicas", async () => {
    fake.create({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "tw", namespace: NS }, spec: { image: "i", module: "m", replicas: 1 } });
    fake.patchStatus("taskworkers", NS, "tw", { replicas: 1, selector: "a=1" }, "ctl");
    await custom.replaceNamespacedCustomObjectScale({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", name: "tw", body: { spec: { replicas: 7 } } });
    const tw = fake.get("taskworkers", NS, "tw")!;
    expect((tw.spec as Obj).replicas).toBe(7);
    expect((tw.metadata as Obj).generation).toBe(2);
    const scale = (await custom.getNamespacedCustomObjectScale({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", name: "tw" })) as Obj;
    expect(scale).toMatchObject({ kind: "Scale", spec: { replicas: 7 }, status: { replicas: 1, selector: "a=1" } });
  });

  it("watch: replays from a resourceVersion, and answers a 410 Expired ERROR event for one that is too old", async () => {
    const list = await apps.listNamespacedDeployment({ namespace: NS });
    const rv = list.metadata!.resourceVersion!;
    const watch = new Watch(fake.kubeConfig());
    const seen: string[] = [];
    const ctl = await watch.watch(`/apis/apps/v1/namespaces/${NS}/deployments`, { resourceVersion: rv }, (type, obj: Obj) => seen.push(`${type}:${String((obj.spec as Obj | undefined)?.replicas)}`), () => undefined);
    await apps.patchNamespacedDeployment({ name: "d1", namespace: NS, body: { spec: { replicas: 6 } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    await waitFor("the watch to see the patch", () => seen.includes("MODIFIED:6"), 5000, 10);
    expect(seen).toContain("MODIFIED:6");
    fake.expireWatches();
    ctl.abort();
    // As the real server: HTTP 200, then one ERROR event carrying the 410 Status, then the end of the stream.
    const events: { type: string; obj: Obj }[] = [];
    await new Promise<unknown>((resolve) => void watch.watch(`/apis/apps/v1/namespaces/${NS}/deployments`, { resourceVersion: rv }, (type, obj: Obj) => events.push({ type, obj }), resolve));
    expect(events).toEqual([{ type: "ERROR", obj: expect.objectContaining({ kind: "Status", code: 410, reason: "Expired" }) }]);
  });

  it("deleting an owner deletes its dependents (garbage collector)", async () => {
    const owner = fake.get("taskworkers", NS, "tw")!;
    fake.create({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "owned", namespace: NS, ownerReferences: [{ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", name: "tw", uid: (owner.metadata as Obj).uid, controller: true }] }, spec: deployment(1).spec });
    await custom.deleteNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", name: "tw" });
    await waitFor("the garbage collector to delete the dependent", () => fake.get("deployments", NS, "owned") === undefined, 5000, 10);
    expect(fake.get("deployments", NS, "owned")).toBeUndefined();
    expect(fake.get("deployments", NS, "d1")).toBeDefined();
  });

  it("a CRD created over HTTP is Established and served (discovery too); a clashing name is not accepted; deleting it takes its objects", async () => {
    const CRDS = `${fake.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;
    const crd = (plural: string, kind: string): Obj => ({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.fk.example.com` },
      spec: {
        group: "fk.example.com",
        scope: "Namespaced",
        names: { plural, kind },
        versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer", default: 1 } } } } } } }],
      },
    });
    const send = async (method: string, url: string, body?: Obj): Promise<{ status: number; body: Obj }> => {
      const res = await fetch(url, { method, headers: { "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: (await res.json()) as Obj };
    };
    const conditions = async (name: string): Promise<Record<string, unknown>> =>
      Object.fromEntries((((await send("GET", `${CRDS}/${name}`)).body.status as Obj).conditions as Obj[]).map((c) => [c.type, c.status]));

    expect((await send("POST", CRDS, crd("gadgets", "Gadget"))).status).toBe(201);
    expect(await conditions("gadgets.fk.example.com")).toEqual({ NamesAccepted: "True", Established: "True" });
    const discovery = (await send("GET", `${fake.url}/apis/fk.example.com/v1`)).body;
    expect(discovery.resources).toEqual([expect.objectContaining({ name: "gadgets", kind: "Gadget", namespaced: true })]);
    const created = await send("POST", `${fake.url}/apis/fk.example.com/v1/namespaces/${NS}/gadgets`, { apiVersion: "fk.example.com/v1", kind: "Gadget", metadata: { name: "g1" }, spec: {} });
    expect(created.status).toBe(201);
    expect(created.body.spec).toEqual({ size: 1 }); // the schema's default, through the schema engine

    // Another CRD of the group claiming the same kind: its names are not accepted, and it serves nothing.
    expect((await send("POST", CRDS, crd("gizmos", "Gadget"))).status).toBe(201);
    expect(await conditions("gizmos.fk.example.com")).toEqual({ NamesAccepted: "False", Established: "False" });
    expect((await send("GET", `${fake.url}/apis/fk.example.com/v1/namespaces/${NS}/gizmos`)).status).toBe(404);

    expect((await send("DELETE", `${CRDS}/gadgets.fk.example.com`)).status).toBe(200);
    expect((await send("GET", `${fake.url}/apis/fk.example.com/v1/namespaces/${NS}/gadgets/g1`)).status).toBe(404);
    expect(fake.types.some((t) => t.plural === "gadgets")).toBe(false);
    // The kind is free again: the other CRD's names are accepted now.
    expect(await conditions("gizmos.fk.example.com")).toEqual({ NamesAccepted: "True", Established: "True" });
  });

  describe("finalizers", () => {
    const TR = { group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskruns" };
    const taskRun = (name: string, metadata: Obj = {}): Obj => ({ apiVersion: "offload.dev/v1alpha1", kind: "TaskRun", metadata: { name, namespace: NS, ...metadata }, spec: { task: "t" } });
    const m = (name: string): Obj | undefined => fake.get("taskruns", NS, name)?.metadata as Obj | undefined;
    const mergePatch = (name: string, body: Obj) => custom.patchNamespacedCustomObject({ ...TR, name, body }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    const watchTaskRuns = async (seen: string[]) => {
      const rv = (await custom.listNamespacedCustomObject({ ...TR })) as { metadata: { resourceVersion: string } };
      return new Watch(fake.kubeConfig()).watch(`/apis/offload.dev/v1alpha1/namespaces/${NS}/taskruns`, { resourceVersion: rv.metadata.resourceVersion }, (type, obj: Obj) => seen.push(`${type}:${String((obj.metadata as Obj).name)}:${(obj.metadata as Obj).deletionTimestamp ? "deleting" : "live"}`), () => undefined);
    };

    it("DELETE marks an object with finalizers; it goes when a write removes the last one, and none may be added meanwhile", async () => {
      fake.create(taskRun("held", { finalizers: ["a.example/one", "b.example/two"] }));
      const seen: string[] = [];
      const ctl = await watchTaskRuns(seen);
      await custom.deleteNamespacedCustomObject({ ...TR, name: "held" });
      const marked = m("held")!;
      expect(marked.deletionTimestamp).toEqual(expect.any(String));
      expect(marked.deletionGracePeriodSeconds).toBe(0);
      // Deleting again changes nothing.
      await custom.deleteNamespacedCustomObject({ ...TR, name: "held" });
      expect(m("held")!.resourceVersion).toBe(marked.resourceVersion);
      // A write can neither add a finalizer nor clear deletionTimestamp.
      expect(await code(mergePatch("held", { metadata: { finalizers: ["a.example/one", "b.example/two", "c.example/three"] } }))).toBe(422);
      await mergePatch("held", { metadata: { finalizers: ["b.example/two"], deletionTimestamp: null, labels: { x: "y" } } });
      expect(m("held")).toMatchObject({ finalizers: ["b.example/two"], deletionTimestamp: marked.deletionTimestamp, labels: { x: "y" } });
      // A JSON patch (with a test) that removes the last one deletes it.
      await custom.patchNamespacedCustomObject(
        { ...TR, name: "held", body: [{ op: "test", path: "/metadata/finalizers/0", value: "b.example/two" }, { op: "remove", path: "/metadata/finalizers/0" }] },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
      expect(m("held")).toBeUndefined();
      expect(await code(custom.getNamespacedCustomObject({ ...TR, name: "held" }))).toBe(404);
      // DELETED is the last event expected: wait for it, then check the whole sequence.
      await waitFor("the watch to see the delete", () => seen.includes("DELETED:held:deleting"), 5000, 10);
      ctl.abort();
      expect(seen).toEqual(["MODIFIED:held:deleting", "MODIFIED:held:deleting", "DELETED:held:deleting"]);
    });

    it("a client cannot set deletionTimestamp; an object without finalizers goes at once", async () => {
      fake.create(taskRun("plain", { deletionTimestamp: "2020-01-01T00:00:00Z" }));
      expect(m("plain")!.deletionTimestamp).toBeUndefined();
      await mergePatch("plain", { metadata: { deletionTimestamp: "2020-01-01T00:00:00Z" } });
      expect(m("plain")!.deletionTimestamp).toBeUndefined();
      await custom.deleteNamespacedCustomObject({ ...TR, name: "plain" });
      expect(m("plain")).toBeUndefined();
    });

    it("the garbage collector deletes a dependent with finalizers as any delete does: marked, gone once they are removed", async () => {
      const owner = fake.create(taskRun("owner"));
      const ref = { apiVersion: "offload.dev/v1alpha1", kind: "TaskRun", name: "owner", uid: (owner.metadata as Obj).uid };
      fake.create(taskRun("dependent", { ownerReferences: [ref], finalizers: ["a.example/one"] }));
      fake.create(taskRun("free-dependent", { ownerReferences: [ref] }));
      fake.delete("taskruns", NS, "owner");
      await waitFor("the garbage collector to handle the dependents", () => m("free-dependent") === undefined && m("dependent")?.deletionTimestamp !== undefined, 5000, 10);
      expect(m("free-dependent")).toBeUndefined();
      expect(m("dependent")!.deletionTimestamp).toEqual(expect.any(String));
      fake.patch("taskruns", NS, "dependent", { metadata: { finalizers: null } });
      expect(m("dependent")).toBeUndefined();
    });

    it("propagationPolicy Foreground deletes the dependents first, then the owner; Orphan keeps them without the owner reference", async () => {
      const del = (name: string, propagationPolicy: string) => custom.deleteNamespacedCustomObject({ ...TR, name, propagationPolicy });
      const ref = (o: Obj): Obj => ({ apiVersion: "offload.dev/v1alpha1", kind: "TaskRun", name: (o.metadata as Obj).name, uid: (o.metadata as Obj).uid, blockOwnerDeletion: true });
      const fg = fake.create(taskRun("fg-owner"));
      fake.create(taskRun("fg-child", { ownerReferences: [ref(fg)], finalizers: ["a.example/one"] }));
      const marked = (await del("fg-owner", "Foreground")) as Obj;
      expect((marked.metadata as Obj).finalizers).toEqual(["foregroundDeletion"]);
      await waitFor("the child to be marked", () => m("fg-child")?.deletionTimestamp !== undefined, 5000, 10);
      expect(m("fg-owner")).toBeDefined(); // the child is still there: the owner waits for it
      fake.patch("taskruns", NS, "fg-child", { metadata: { finalizers: null } });
      await waitFor("the owner to go after its child", () => m("fg-owner") === undefined, 5000, 10);

      const orphaner = fake.create(taskRun("orphaner"));
      fake.create(taskRun("orphan", { ownerReferences: [ref(orphaner)] }));
      await del("orphaner", "Orphan");
      await waitFor("the owner to go", () => m("orphaner") === undefined, 5000, 10);
      expect(m("orphan")).toBeDefined();
      expect(m("orphan")!.ownerReferences).toBeUndefined();
    });

    it("an owner with finalizers keeps its dependents until it is gone (background propagation)", async () => {
      const owner = fake.create(taskRun("slow-owner", { finalizers: ["a.example/one"] }));
      fake.create(taskRun("child", { ownerReferences: [{ apiVersion: "offload.dev/v1alpha1", kind: "TaskRun", name: "slow-owner", uid: (owner.metadata as Obj).uid }] }));
      fake.delete("taskruns", NS, "slow-owner");
      await new Promise((r) => setTimeout(r, 50));
      expect(m("child")).toBeDefined();
      fake.patch("taskruns", NS, "slow-owner", { metadata: { finalizers: [] } });
      expect(m("slow-owner")).toBeUndefined();
      await waitFor("the garbage collector to delete the child", () => m("child") === undefined, 5000, 10);
      expect(m("child")).toBeUndefined();
    });
  });
});
