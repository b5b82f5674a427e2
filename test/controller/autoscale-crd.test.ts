import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiException, CustomObjectsApi } from "@kubernetes/client-node";
import { parse } from "yaml";
import { TaskWorkerSchema } from "../../operator/src/crds/schemas.js";
import { startFakeKube, type FakeKube } from "../k8s/index.js";
import { ROOT, taskWorker } from "./support.js";

type Node = Record<string, unknown>;
const NS = "crd-autoscale";
const crd = parse(readFileSync(join(ROOT, "crds/taskworkers.offload.dev.yaml"), "utf8")) as Node;
const version = ((crd.spec as Node).versions as Node[])[0]!;

describe("TaskWorker spec.autoscaling as the API server admits it", () => {
  let fake: FakeKube;
  let custom: CustomObjectsApi;

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    fake.ensureNamespace(NS);
    custom = fake.kubeConfig().makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => {
    await fake?.close();
  });

  /** Creates a TaskWorker over HTTP; the Status body's causes (`field: message`) when refused. */
  const create = async (name: string, spec: Node): Promise<{ obj?: Node; causes?: string[]; code?: number }> => {
    try {
      const obj = (await custom.createNamespacedCustomObject({ group: "offload.dev", version: "v1alpha1", namespace: NS, plural: "taskworkers", body: taskWorker(name, NS, { image: "i", module: "m.js", ...spec }) })) as Node;
      return { obj };
    } catch (err) {
      if (!(err instanceof ApiException)) throw err;
      const body = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as { details?: { causes?: { field: string; message: string }[] } };
      return { code: err.code, causes: (body.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`) };
    }
  };

  it("fills in the defaults: minReplicas 0, scaleDownDelaySeconds 60 (targetBacklogPerReplica left to concurrency)", async () => {
    const { obj } = await create("defaults", { tasks: ["resize"], autoscaling: { maxReplicas: 5 } });
    expect((obj?.spec as Node).autoscaling).toEqual({ minReplicas: 0, maxReplicas: 5, scaleDownDelaySeconds: 60 });
    expect(TaskWorkerSchema.parse(obj).spec.autoscaling).toEqual({ minReplicas: 0, maxReplicas: 5, scaleDownDelaySeconds: 60 });
  });

  it("minReplicas > maxReplicas: 422 with the rule's message at spec.autoscaling.minReplicas", async () => {
    const r = await create("inverted", { tasks: ["resize"], autoscaling: { minReplicas: 4, maxReplicas: 2 } });
    expect(r.code).toBe(422);
    expect(r.causes).toEqual(['spec.autoscaling.minReplicas: Invalid value: "object": minReplicas must not exceed maxReplicas: lower minReplicas or raise maxReplicas']);
    expect(fake.get("taskworkers", NS, "inverted")).toBeUndefined();
    // The controller's own schema says the same of an object that got past an older CRD.
    const z = TaskWorkerSchema.safeParse(taskWorker("inverted", NS, { image: "i", module: "m.js", tasks: ["resize"], autoscaling: { minReplicas: 4, maxReplicas: 2 } }));
    expect(z.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual(["spec.autoscaling.minReplicas: minReplicas must not exceed maxReplicas: lower minReplicas or raise maxReplicas"]);
  });

  it("negative or zero bounds are refused by the schema's minimums", async () => {
    const r = await create("negative", { tasks: ["resize"], autoscaling: { minReplicas: -1, maxReplicas: 0, targetBacklogPerReplica: 0, scaleDownDelaySeconds: -5 } });
    expect(r.code).toBe(422);
    expect(r.causes).toEqual(
      expect.arrayContaining([
        "spec.autoscaling.minReplicas: Invalid value: -1: spec.autoscaling.minReplicas in body should be greater than or equal to 0",
        "spec.autoscaling.maxReplicas: Invalid value: 0: spec.autoscaling.maxReplicas in body should be greater than or equal to 1",
        "spec.autoscaling.targetBacklogPerReplica: Invalid value: 0: spec.autoscaling.targetBacklogPerReplica in body should be greater than or equal to 1",
        "spec.autoscaling.scaleDownDelaySeconds: Invalid value: -5: spec.autoscaling.scaleDownDelaySeconds in body should be greater than or equal to 0",
      ]),
    );
  });

  it("scale to zero without spec.tasks is refused with what to do; with minReplicas 1 it is fine", async () => {
    const r = await create("no-tasks", { autoscaling: { maxReplicas: 3 } });
    expect(r.code).toBe(422);
    expect(r.causes).toEqual([
      'spec: Invalid value: "object": autoscaling with minReplicas 0 needs spec.tasks: with no pod running the controller cannot tell which tasks this pool serves; list them in spec.tasks or set minReplicas to 1 or more',
    ]);
    expect((await create("no-tasks", { autoscaling: { minReplicas: 1, maxReplicas: 3 } })).obj).toBeDefined();
  });

  it("kubectl get tw -o wide columns: Min and Max (priority 1), Backlog", () => {
    const cols = version.additionalPrinterColumns as Node[];
    expect(cols.filter((c) => ["Min", "Max", "Backlog"].includes(c.name as string))).toEqual([
      { name: "Backlog", type: "integer", jsonPath: ".status.backlog", description: "Runs waiting for a worker." },
      { name: "Min", type: "integer", jsonPath: ".spec.autoscaling.minReplicas", priority: 1, description: "Fewest worker pods the autoscaler keeps (empty: not autoscaled)." },
      { name: "Max", type: "integer", jsonPath: ".spec.autoscaling.maxReplicas", priority: 1, description: "Most worker pods the autoscaler runs (empty: not autoscaled)." },
    ]);
  });
});
