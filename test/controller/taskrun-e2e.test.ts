import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { freePort, startNats, startProcess, waitFor, type Child, type NatsServer } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { ROOT, startController, taskRun } from "./support.js";

const NS = "runs";
const TOKEN = "e2e-token";
const FINALIZER = "offload.dev/cancel-run";

type TrStatus = { state?: string; runId?: string; attempts?: number; startedAt?: string; finishedAt?: string; resultSummary?: string; error?: { type: string; message: string }; conditions?: { type: string; status: string; reason: string; message: string }[] };

describe("TaskRun end to end: real run API, nats-server and worker", () => {
  let nats: NatsServer | undefined;
  let fake: FakeKube | undefined;
  let dataDir: string | undefined;
  const children: Child[] = [];
  let apiUrl = "";

  const status = (name: string): TrStatus => (fake!.get("taskruns", NS, name)?.status ?? {}) as TrStatus;
  const finalizers = (name: string): unknown => (fake!.get("taskruns", NS, name)?.metadata as Obj | undefined)?.finalizers;
  const getRun = async (id: string): Promise<{ state: string }> => (await (await fetch(`${apiUrl}/v1/runs/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { state: string };
  // As kubectl delete does it: through the API server.
  const deleteTaskRun = (name: string) =>
    fake!.kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskruns", name });

  beforeAll(async () => {
    [nats, fake] = await Promise.all([startNats(), startFakeKube({ crds: true })]);
    dataDir = await mkdtemp(join(tmpdir(), "offload-e2e-api-"));
    const apiPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    const api = startProcess("offload-api", process.execPath, [join(ROOT, "operator/dist/bin/offload-api.js")], {
      OFFLOAD_API_PORT: String(apiPort),
      OFFLOAD_API_HOST: "127.0.0.1",
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_DATABASE_URL: undefined,
      OFFLOAD_DATA_DIR: dataDir,
      OFFLOAD_API_TOKEN: TOKEN,
    });
    children.push(api);
    const worker = startProcess("offload-worker", process.execPath, [join(ROOT, "worker/dist/bin/offload-worker.js"), "--module", join(ROOT, "test/controller/fixtures/tasks.mjs")], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_WORKER_PORT: String(await freePort()),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
    });
    children.push(worker);
    await waitFor("the run API to be ready", async () => (await fetch(`${apiUrl}/readyz`)).ok, 45_000, 200);
    const ctl = await startController(fake, "ctl-e2e", { OFFLOAD_API_URL: apiUrl, OFFLOAD_API_TOKEN: TOKEN, OFFLOAD_LEADER_ELECTION: "false", OFFLOAD_NATS_URL: nats.url, OFFLOAD_BACKLOG_SECONDS: "1" });
    children.push(ctl);
    await ctl.waitForOutput("controller acting");
  }, 60_000);

  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop(8000)));
    if (process.env.SHOW_CONTROLLER_LOG) for (const c of children) process.stderr.write(`--- ${c.name}\n${c.output().slice(-5000)}\n`);
    await Promise.all([nats?.stop(), fake?.close()]);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("a TaskRun is submitted once and its run's COMPLETED state and result are mirrored", async () => {
    fake!.create(taskRun("add-2-3", NS, { task: "e2e-add", parameters: { a: 2, b: 3 } }));
    const st = await waitFor("COMPLETED", () => (status("add-2-3").state === "COMPLETED" ? status("add-2-3") : undefined), 45_000, 100);
    expect(st.resultSummary).toBe('{"sum":5}');
    expect(st.attempts).toBe(1);
    expect(st.startedAt).toBeTruthy();
    expect(st.finishedAt).toBeTruthy();
    expect(st.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({ status: "True", reason: "Completed" });

    // The run API has it, keyed by the TaskRun's UID.
    const uid = (fake!.get("taskruns", NS, "add-2-3")!.metadata as Obj).uid as string;
    const run = (await (await fetch(`${apiUrl}/v1/runs/${st.runId}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { idempotencyKey: string; state: string };
    expect(run).toMatchObject({ idempotencyKey: uid, state: "COMPLETED" });
    const list = (await (await fetch(`${apiUrl}/v1/runs?task=e2e-add`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { runs: unknown[] };
    expect(list.runs).toHaveLength(1);
  });

  it("a TaskWorker's status.backlog comes from the run API", async () => {
    // Three runs of a task no worker serves: they wait PENDING, and that is the backlog.
    const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${apiUrl}/v1/runs`, { method: "POST", headers: auth, body: JSON.stringify({ task: "e2e-unserved", parameters: { i } }) });
      expect(res.status).toBe(202);
    }
    fake!.create({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name: "idlers", namespace: NS }, spec: { image: "img:1", module: "tasks.mjs", tasks: ["e2e-unserved"], replicas: 1 } });
    const backlog = await waitFor("status.backlog to show the three waiting runs", () => {
      const b = (fake!.get("taskworkers", NS, "idlers")?.status as { backlog?: number } | undefined)?.backlog;
      return b === 3 ? b : undefined;
    }, 30_000);
    expect(backlog).toBe(3);
  });

  it("a TaskRun of a task no worker serves says so, instead of a bare PENDING", async () => {
    fake!.create(taskRun("typo", NS, { task: "e2e-ad", parameters: { a: 1, b: 2 } }));
    const st = await waitFor("the NoWorker condition", () => {
      const s = status("typo");
      return s.conditions?.find((c) => c.type === "Succeeded" && c.reason === "NoWorker") ? s : undefined;
    }, 30_000, 100);
    expect(st.state).toBe("PENDING");
    expect(st.conditions?.find((c) => c.type === "Succeeded")?.message).toContain('no worker serves task "e2e-ad"');
  });

  it("a failing run's error is mirrored and Succeeded=False", async () => {
    fake!.create(taskRun("boom", NS, { task: "e2e-boom", parameters: {} }));
    const st = await waitFor("FAILED", () => (status("boom").state === "FAILED" ? status("boom") : undefined), 45_000, 100);
    expect(st.error).toMatchObject({ type: "TypeError", message: expect.stringContaining("boom on purpose") });
    expect(st.conditions?.find((c) => c.type === "Succeeded")).toMatchObject({ status: "False", reason: "Failed" });
  });

  it("a COMPLETED TaskRun has no finalizer left and deletes at once", async () => {
    expect(status("add-2-3").state).toBe("COMPLETED");
    await waitFor("the finalizer to go", () => finalizers("add-2-3") === undefined, 15_000, 100);
    await deleteTaskRun("add-2-3");
    expect(fake!.get("taskruns", NS, "add-2-3")).toBeUndefined();
  });

  it("deleting a TaskRun whose run is RUNNING cancels the run, then the TaskRun goes", async () => {
    fake!.create(taskRun("sleepy", NS, { task: "e2e-sleep", parameters: { seconds: 600 } }));
    const st = await waitFor("RUNNING", () => (status("sleepy").state === "RUNNING" ? status("sleepy") : undefined), 45_000, 100);
    expect(finalizers("sleepy")).toEqual([FINALIZER]);
    await deleteTaskRun("sleepy");
    await waitFor("the TaskRun to go", () => !fake!.get("taskruns", NS, "sleepy"), 30_000, 100);
    const run = await waitFor("the run to end CANCELLED", async () => {
      const r = await getRun(st.runId!);
      return r.state === "CANCELLED" ? r : undefined;
    }, 30_000, 100);
    expect(run.state).toBe("CANCELLED");
    const ev = fake!.list("events.events.k8s.io", NS).find((e) => e.reason === "Cancelled" && (e.regarding as Obj).name === "sleepy");
    expect(ev).toMatchObject({ type: "Normal", note: expect.stringContaining(st.runId!) });
  });
});
