import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { ApiError, type Run, type Schedule } from "@offload/sdk/internal";
import { parse, stringify } from "yaml";
import { TaskScheduleSchema } from "../../operator/src/crds/schemas.js";
import { OwnWrites } from "../../operator/src/controller/own-writes.js";
import { RetryableError } from "../../operator/src/controller/result.js";
import { reconcileTaskSchedule, requeueAfter, sameSpec, SCHEDULE_FINALIZER, type TaskScheduleDeps } from "../../operator/src/controller/taskschedule.js";
import { startStack, stopSharedPostgres, waitFor, type Child, type Stack } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { admitObject, validateCrd } from "../k8s/schema/index.js";
import { ROOT, startController } from "./support.js";

const NS = "sched";
const TOKEN = "taskschedule-token";
const KUBECTL = join(ROOT, ".tools/bin/kubectl");
const EVERY_2S = "*/2 * * * * *";

type Cond = { type: string; status: string; reason: string; message: string; observedGeneration?: number };
type TsStatus = { lastScheduleTime?: string; lastRunId?: string; nextScheduleTime?: string; observedGeneration?: number; conditions?: Cond[] };

const load = async (p: string): Promise<Obj> => parse(await readFile(join(ROOT, p), "utf8")) as Obj;
const jsonOf = (v: unknown): string => JSON.stringify(v);
const taskSchedule = (name: string, spec: Obj): Obj => ({ apiVersion: "offload.dev/v1alpha1", kind: "TaskSchedule", metadata: { name, namespace: NS }, spec });

describe("the TaskSchedule CRD, as kube-apiserver v1.32 judges it (the stand-in's schema engine)", () => {
  it("is accepted under fieldValidation=Strict; the example is admitted as it is, defaults filled in; bad values are refused naming the field", async () => {
    const crd = await load("crds/taskschedules.offload.dev.yaml");
    expect(validateCrd(crd, { fieldValidation: "Strict" })).toEqual({ warnings: [] });
    const example = await load("examples/taskschedule.yaml");
    expect(TaskScheduleSchema.parse(example).spec.task).toBe("text-report");
    const admitted = admitObject(crd, "v1alpha1", example, { fieldValidation: "Strict" });
    expect(admitted.rejection, admitted.rejection?.message).toBeUndefined();
    expect(admitted.warnings).toEqual([]);
    const minimal = admitObject(crd, "v1alpha1", taskSchedule("m", { schedule: "@hourly", task: "t", parameters: [1, { a: null }] }), { fieldValidation: "Strict" });
    expect(minimal.obj.spec).toEqual({ schedule: "@hourly", task: "t", parameters: [1, { a: null }], concurrencyPolicy: "Allow", suspend: false });

    const refused = (spec: Obj): string[] =>
      (admitObject(crd, "v1alpha1", taskSchedule("bad", { schedule: "@hourly", task: "t", ...spec }), { fieldValidation: "Warn" }).rejection?.causes ?? [])
        .map((c) => c.field)
        .filter((f) => f !== "<nil>"); // "some validation rules were not checked", as the real server adds
    expect(refused({ concurrencyPolicy: "Sometimes" })).toEqual(["spec.concurrencyPolicy"]);
    expect(refused({ priority: 9 })).toEqual(["spec.priority"]);
    expect(refused({ startingDeadlineSeconds: 0 })).toEqual(["spec.startingDeadlineSeconds"]);
    expect(refused({ task: "Not A Task" })).toEqual(["spec.task"]);
    expect(refused({ schedule: "" })).toEqual(["spec.schedule"]);
    const noTask = admitObject(crd, "v1alpha1", taskSchedule("bad", { schedule: "@hourly" }), { fieldValidation: "Warn" });
    expect(noTask.rejection?.causes.map((c) => `${c.field} ${c.reason}`)).toContain("spec.task FieldValueRequired");
  });
});

describe("whether the run API holds a TaskSchedule's spec", () => {
  it("counts a priority set there (over HTTP) on a spec that names none as a change, so the next read puts the spec back", () => {
    const spec = TaskScheduleSchema.parse(taskSchedule("p", { schedule: "@hourly", task: "t" })).spec;
    const held = { task: "t", schedule: "@hourly", timeZone: "UTC", parameters: null, concurrencyPolicy: "Allow", suspend: false,
      startingDeadlineSeconds: null, priority: null, concurrencyKey: null, rateLimitKey: null } as Schedule;
    expect(sameSpec(spec, held)).toBe(true);
    expect(sameSpec(spec, { ...held, priority: 1 })).toBe(false);
    expect(sameSpec({ ...spec, priority: 1 }, { ...held, priority: 1 })).toBe(true);
  });
});

describe("a TaskSchedule whose parameters the run API refuses", () => {
  it("is tried again after a while (a worker may register the input schema they fit), and is Ready once taken", async () => {
    const name = "params";
    let raw: Obj = { ...taskSchedule(name, { schedule: "@hourly", task: "t", parameters: { n: "5" }, concurrencyPolicy: "Allow", suspend: false }), metadata: { name, namespace: NS, generation: 1, uid: "u", finalizers: [] } };
    let fits = false;
    const puts: unknown[] = [];
    const held = { key: `taskschedule.${name}`, namespace: NS, task: "t", schedule: "@hourly", timeZone: "UTC", parameters: { n: "5" }, concurrencyPolicy: "Allow", suspend: false,
      startingDeadlineSeconds: null, priority: null, concurrencyKey: null, rateLimitKey: null, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z",
      lastScheduleTime: null, lastRunId: null, nextScheduleTime: "2026-01-01T01:00:00.000Z" } as Schedule;
    const deps = {
      kube: {
        patchFinalizers: async (_p: string, _ns: string, _n: string, _from: string[], to: string[]) => (raw = { ...raw, metadata: { ...(raw.metadata as Obj), finalizers: to } }),
        patchStatus: async (_p: string, _ns: string, _n: string, status: Obj) => (raw = { ...raw, status }),
      },
      events: { record: async () => undefined },
      api: {
        putSchedule: async (_key: string, body: unknown) => {
          puts.push(body);
          if (!fits) throw new ApiError("OFFLOAD_INVALID_PARAMETERS", 400, "parameters.n: must be number", [{ path: "parameters.n", message: "must be number" }]);
          return held;
        },
        getSchedule: () => Promise.reject(new ApiError("OFFLOAD_SCHEDULE_NOT_FOUND", 404, "no schedule")),
        deleteSchedule: () => Promise.reject(new Error("unused")),
      },
      getTaskSchedule: () => raw,
      writes: new OwnWrites(),
      minRequeueMs: 1000,
      maxRequeueMs: 60_000,
      deleteGiveUpMs: 300_000,
      now: () => new Date("2026-01-01T00:00:00Z"),
    } as unknown as TaskScheduleDeps;
    expect(await reconcileTaskSchedule(deps, NS, name)).toEqual({ requeueAfterMs: 60_000 });
    const refused = (raw.status as TsStatus).conditions!.find((c) => c.type === "Ready")!;
    expect(refused).toMatchObject({ status: "False", reason: "InvalidSchedule", message: expect.stringContaining("parameters.n") });
    // Still refused on the next read: asked again, nothing written anew.
    expect(await reconcileTaskSchedule(deps, NS, name)).toEqual({ requeueAfterMs: 60_000 });
    expect(puts).toHaveLength(2);
    fits = true;
    await reconcileTaskSchedule(deps, NS, name);
    expect((raw.status as TsStatus).conditions!.find((c) => c.type === "Ready")).toMatchObject({ status: "True", reason: "Scheduled" });
  });
});

describe("a TaskSchedule deleted while the run API cannot be reached", () => {
  it("keeps its finalizer and is tried again within seconds, not after a backoff grown to minutes; past the give-up time it goes", async () => {
    const deletedAt = new Date("2026-01-01T00:00:00Z");
    let now = new Date(deletedAt.getTime() + 60_000);
    const removed: string[] = [];
    const raw = { ...taskSchedule("gone", { schedule: "@hourly", task: "t" }), metadata: { name: "gone", namespace: NS, deletionTimestamp: deletedAt.toISOString(), finalizers: [SCHEDULE_FINALIZER] } };
    const deps = {
      kube: { patchFinalizers: async () => (removed.push("finalizer"), raw) },
      events: { record: async () => undefined },
      api: { deleteSchedule: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1")), putSchedule: () => Promise.reject(new Error("unused")), getSchedule: () => Promise.reject(new Error("unused")) },
      getTaskSchedule: () => raw,
      writes: new OwnWrites(),
      minRequeueMs: 1000,
      maxRequeueMs: 60_000,
      deleteGiveUpMs: 300_000,
      now: () => now,
    } as unknown as TaskScheduleDeps;
    const err = await reconcileTaskSchedule(deps, NS, "gone").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).retryWithinMs).toBeLessThanOrEqual(5000);
    expect(removed).toEqual([]);
    now = new Date(deletedAt.getTime() + 300_001);
    await reconcileTaskSchedule(deps, NS, "gone");
    expect(removed).toEqual(["finalizer"]);
  });
});

describe("when the controller reads a schedule again", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const deps = { minRequeueMs: 1000, maxRequeueMs: 60_000, now: () => now };
  const at = (offsetMs: number | null, suspend = false): Schedule =>
    ({ nextScheduleTime: offsetMs === null ? null : new Date(now.getTime() + offsetMs).toISOString(), suspend }) as Schedule;

  it("a second after the next time, within bounds; a late schedule after as long as it is late; a suspended one at the longest", () => {
    expect(requeueAfter(deps, at(10_000))).toBe(11_000);
    expect(requeueAfter(deps, at(0))).toBe(1000);
    expect(requeueAfter(deps, at(3_600_000))).toBe(60_000);
    expect(requeueAfter(deps, at(-500))).toBe(1000);
    expect(requeueAfter(deps, at(-20_000))).toBe(19_000);
    expect(requeueAfter(deps, at(-600_000))).toBe(60_000);
    expect(requeueAfter(deps, at(10_000, true))).toBe(60_000);
    expect(requeueAfter(deps, at(null))).toBe(60_000);
  });
});

describe("TaskSchedule end to end: the real controller, the stand-in, a real run API (nats-server, PostgreSQL)", () => {
  let stack: Stack | undefined;
  let fake: FakeKube | undefined;
  let ctl: Child | undefined;
  let dir = "";
  let kubeconfig = "";

  const status = (name: string): TsStatus => (fake!.get("taskschedules", NS, name)?.status ?? {}) as TsStatus;
  const ready = (name: string): Cond | undefined => status(name).conditions?.find((c) => c.type === "Ready");
  const events = (name: string): Obj[] => fake!.list("events.events.k8s.io", NS).filter((e) => (e.regarding as Obj).name === name);
  const runsOf = async (task: string): Promise<Run[]> => (await stack!.client.listRuns({ task, limit: 200 })).runs;
  const apiSchedule = (name: string) => stack!.client.getSchedule(`taskschedule.${name}`, { namespace: NS });
  const kubectl = async (...args: string[]): Promise<string> => {
    const { stdout } = await promisify(execFile)(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "cache"), "-n", NS, ...args]);
    return stdout;
  };
  const apply = async (obj: Obj): Promise<string> => {
    const file = join(dir, `${String((obj.metadata as Obj).name)}.yaml`);
    await writeFile(file, stringify(obj));
    return kubectl("apply", "--validate=strict", "-f", file);
  };
  // As kubectl delete does it: through the API server (the finalizer holds the object until the controller lets go).
  const remove = (name: string) =>
    fake!.kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskschedules", name });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-ts-"));
    [stack, fake] = await Promise.all([startStack({ token: TOKEN }), startFakeKube({ crds: true })]);
    fake.ensureNamespace(NS);
    kubeconfig = await fake.writeKubeconfig(dir);
    ctl = await startController(fake, "ctl-ts", { OFFLOAD_API_URL: stack.apiUrl, OFFLOAD_API_TOKEN: TOKEN, OFFLOAD_LEADER_ELECTION: "false", OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS: "5" });
    await ctl.waitForOutput("controller acting");
  }, 90_000);

  afterAll(async () => {
    await ctl?.stop(8000);
    if (process.env.SHOW_CONTROLLER_LOG && ctl) process.stderr.write(`--- controller\n${ctl.output().slice(-8000)}\n`);
    await Promise.all([stack?.stop(), fake?.close()]);
    await stopSharedPostgres();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("kubectl apply: one run per scheduled time (idempotency key schedule:taskschedule.<name>:<time>), the times mirrored into status, kubectl get ts shows them; a change made around it is put back", async () => {
    expect(await apply(taskSchedule("every-2s", { schedule: EVERY_2S, task: "ts-tick", parameters: { count: 1 }, priority: 2 }))).toContain("taskschedule.offload.dev/every-2s created");
    // Two scheduled times mirrored: LAST SCHEDULE moves.
    const first = await waitFor("a first scheduled run mirrored", () => (status("every-2s").lastRunId ? status("every-2s") : undefined), 30_000, 100);
    const later = await waitFor("a later scheduled run mirrored", () => {
      const s = status("every-2s");
      return s.lastScheduleTime && first.lastScheduleTime && s.lastScheduleTime > first.lastScheduleTime ? s : undefined;
    }, 30_000, 100);
    expect(ready("every-2s")).toMatchObject({ status: "True", reason: "Scheduled", observedGeneration: 1 });
    expect(later.observedGeneration).toBe(1);
    expect(new Date(later.nextScheduleTime!).getTime()).toBeGreaterThan(new Date(later.lastScheduleTime!).getTime());
    expect(fake!.get("taskschedules", NS, "every-2s")!.metadata).toMatchObject({ finalizers: ["offload.dev/schedule"] });

    // The run API holds it as the spec says, in the TaskSchedule's namespace.
    expect(await apiSchedule("every-2s")).toMatchObject({ key: "taskschedule.every-2s", namespace: NS, task: "ts-tick", schedule: EVERY_2S, parameters: { count: 1 }, priority: 2 });
    // The mirrored run is the one the API started at that time; every run is one time of the schedule, once.
    const runs = await runsOf("ts-tick");
    const byId = runs.find((r) => r.id === later.lastRunId);
    expect(byId).toMatchObject({ namespace: NS, parameters: { count: 1 }, priority: 2, idempotencyKey: `schedule:taskschedule.every-2s:${new Date(later.lastScheduleTime!).toISOString()}` });
    const keys = runs.map((r) => r.idempotencyKey!);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k).toMatch(/^schedule:taskschedule\.every-2s:\d{4}-\d\d-\d\dT\d\d:\d\d:\d[02468]\.000Z$/);

    const created = await waitFor("the Created event", () => events("every-2s").find((e) => e.reason === "Created"));
    expect(created).toMatchObject({ type: "Normal", note: expect.stringContaining(EVERY_2S) });

    const [head, row] = (await kubectl("get", "ts", "every-2s")).trim().split("\n").map((l) => l.trim().split(/\s{2,}/));
    expect(head).toEqual(["NAME", "SCHEDULE", "TASK", "SUSPEND", "LAST SCHEDULE", "NEXT", "AGE"]);
    expect(row!.slice(0, 4)).toEqual(["every-2s", EVERY_2S, "ts-tick", "false"]);
    expect(row![4]).toMatch(/^\d+s$/); // a date column: how long ago
    // Changed around the controller (a PUT to the same key over HTTP): the TaskSchedule is put back at its next read.
    await stack!.client.putSchedule("taskschedule.every-2s", { task: "ts-tick", schedule: EVERY_2S, parameters: { count: 99 }, namespace: NS });
    await waitFor("the spec to be put back", async () => jsonOf((await apiSchedule("every-2s")).parameters) === jsonOf({ count: 1 }), 30_000, 200);
    expect(await waitFor("the Restored event", () => events("every-2s").find((e) => e.reason === "Restored"))).toMatchObject({ type: "Normal" });
  });

  it("a change of spec is put again (Updated event): suspended, it has no next time", async () => {
    fake!.patch("taskschedules", NS, "every-2s", { spec: { suspend: true } });
    await waitFor("Ready=True Suspended for generation 2", () => ready("every-2s")?.reason === "Suspended" && ready("every-2s")?.observedGeneration === 2, 30_000, 100);
    expect(status("every-2s").nextScheduleTime).toBeUndefined();
    expect(await apiSchedule("every-2s")).toMatchObject({ suspend: true, nextScheduleTime: null });
    expect(await waitFor("the Updated event", () => events("every-2s").find((e) => e.reason === "Updated"))).toMatchObject({ type: "Normal", note: expect.stringContaining("suspended") });
  });

  it("a cron or time zone the run API cannot read: Ready=False InvalidSchedule with its message and a Warning event; fixing it makes it Ready", async () => {
    fake!.create(taskSchedule("bad-cron", { schedule: "every tuesday", task: "ts-bad" }));
    const cond = await waitFor("Ready=False InvalidSchedule", () => (ready("bad-cron")?.reason === "InvalidSchedule" ? ready("bad-cron") : undefined), 30_000, 100);
    expect(cond).toMatchObject({ status: "False", observedGeneration: 1 });
    expect(cond!.message).toContain("the run API refused the schedule");
    expect(await waitFor("the Refused event", () => events("bad-cron").find((e) => e.reason === "Refused"))).toMatchObject({ type: "Warning" });
    await expect(apiSchedule("bad-cron")).rejects.toMatchObject({ status: 404 });

    fake!.patch("taskschedules", NS, "bad-cron", { spec: { schedule: EVERY_2S } });
    await waitFor("Ready=True once the cron is fixed", () => ready("bad-cron")?.status === "True" && status("bad-cron").lastRunId, 30_000, 100);

    // A bad spec after a good one: refused, and the message says the run API keeps firing the good one.
    fake!.patch("taskschedules", NS, "bad-cron", { spec: { timeZone: "Mars/Olympus_Mons" } });
    const again = await waitFor("Ready=False InvalidSchedule for generation 3", () => (ready("bad-cron")?.observedGeneration === 3 && ready("bad-cron")?.status === "False" ? ready("bad-cron") : undefined), 30_000, 100);
    expect(again).toMatchObject({ reason: "InvalidSchedule", message: expect.stringContaining("it keeps the schedule of the spec it took before") });
    expect(cond!.message).not.toContain("it keeps");
    expect(await apiSchedule("bad-cron")).toMatchObject({ schedule: EVERY_2S, timeZone: "UTC" });
    fake!.patch("taskschedules", NS, "bad-cron", { spec: { timeZone: null } });
    await waitFor("Ready=True for generation 4", () => ready("bad-cron")?.status === "True" && ready("bad-cron")?.observedGeneration === 4, 30_000, 100);
  });

  it("while the run API is down a change gives Ready=False ApiUnavailable; once it is back the change is put", async () => {
    await stack!.api.stop(5000);
    fake!.patch("taskschedules", NS, "bad-cron", { spec: { parameters: { v: 2 } } });
    const down = await waitFor("Ready=False ApiUnavailable", () => (ready("bad-cron")?.reason === "ApiUnavailable" ? ready("bad-cron") : undefined), 30_000, 100);
    expect(down).toMatchObject({ status: "False" });
    expect(down!.message).toContain("could not reach the run API");
    await stack!.startApi();
    await waitFor("Ready=True for generation 5", () => ready("bad-cron")?.status === "True" && ready("bad-cron")?.observedGeneration === 5, 60_000, 100);
    expect((await apiSchedule("bad-cron")).parameters).toEqual({ v: 2 });
  }, 90_000);

  it("delete: the run API's schedule goes first (finalizer), then the TaskSchedule; no run starts from it afterwards", async () => {
    await remove("bad-cron");
    await waitFor("the TaskSchedule to go", () => !fake!.get("taskschedules", NS, "bad-cron"), 30_000, 100);
    const gone = await apiSchedule("bad-cron").then(() => undefined, (err: unknown) => err);
    expect(gone).toBeInstanceOf(ApiError);
    expect((gone as ApiError).status).toBe(404);
    expect(await waitFor("the Deleted event", () => events("bad-cron").find((e) => e.reason === "Deleted"))).toMatchObject({ type: "Normal", note: expect.stringContaining("taskschedule.bad-cron") });
    // No run after the deletion: once another schedule has fired twice more, none of bad-cron's times came after it.
    const deletedAt = new Date().toISOString();
    fake!.create(taskSchedule("witness", { schedule: EVERY_2S, task: "ts-witness" }));
    await waitFor("the witness schedule to fire twice", async () => (await runsOf("ts-witness")).length >= 2, 30_000, 200);
    const late = (await runsOf("ts-bad")).filter((r) => r.createdAt > deletedAt);
    expect(late).toEqual([]);
  });
});
