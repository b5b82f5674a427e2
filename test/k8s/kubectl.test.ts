import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ROOT } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "./index.js";

// Installed by scripts/setup.sh (from an npm package), as for the chart tests.
const KUBECTL = join(ROOT, ".tools/bin/kubectl");

/**
 * Runs kubectl against the stand-in; resolves to its exit code and output (never rejects on a non-zero exit).
 * Its discovery cache goes to this file's own temporary folder: under the real HOME (~/.kube/cache) entries
 * kept for a loopback port an earlier stand-in used would describe that one's API, not this one's.
 */
async function kubectl(kubeconfig: string, cacheDir: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") throw new Error(`${KUBECTL} is missing: run npm run setup, which unpacks kubectl`);
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

// The real kubectl (1.33) against the stand-in: discovery and the OpenAPI v3 document are enough for it to
// resolve the CRDs' kinds and leave field validation to the server (--validate=strict, its default).
describe("kubectl against the Kubernetes stand-in", () => {
  let fake: FakeKube;
  let kubeconfig: string;
  let dir: string;
  let cacheDir: string;
  const NS = "kubectl-ns";
  const worker = (name: string, spec: Obj): Obj => ({ apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name }, spec: { image: "img:1", module: "m.js", replicas: 1, ...spec } });
  const file = async (name: string, obj: Obj): Promise<string> => {
    const p = join(dir, `${name}.yaml`);
    await writeFile(p, stringify(obj));
    return p;
  };

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
    fake.ensureNamespace(NS);
    kubeconfig = await fake.writeKubeconfig();
    dir = await mkdtemp(join(tmpdir(), "offload-kubectl-"));
    cacheDir = join(dir, "kube-cache");
  });
  afterAll(async () => {
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("apply --validate=strict: the server checks the fields (fieldValidation=Strict) and refuses an unknown one", async () => {
    const ok = await kubectl(kubeconfig, cacheDir, "apply", "-n", NS, "--validate=strict", "-f", await file("good", worker("good", {})));
    expect(ok.out).toContain("taskworker.offload.dev/good created");
    expect(ok.code).toBe(0);
    const post = fake.requests.find((r) => r.method === "POST" && r.path.endsWith("/taskworkers"));
    expect(post?.query.fieldValidation).toBe("Strict");

    const bad = await kubectl(kubeconfig, cacheDir, "apply", "-n", NS, "--validate=strict", "-f", await file("bad", worker("bad", { colour: "red" })));
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain('strict decoding error: unknown field "spec.colour"');
    expect(fake.get("taskworkers", NS, "bad")).toBeUndefined();
  });

  it("apply again patches; scale goes through the scale subresource; a missing namespace is refused", async () => {
    const again = await kubectl(kubeconfig, cacheDir, "apply", "-n", NS, "-f", await file("good", worker("good", { replicas: 2 })));
    expect(again.out).toContain("taskworker.offload.dev/good configured");
    expect((fake.get("taskworkers", NS, "good")!.spec as Obj).replicas).toBe(2);

    const scaled = await kubectl(kubeconfig, cacheDir, "scale", "-n", NS, "tw/good", "--replicas=5");
    expect(scaled.out).toContain("scaled");
    expect((fake.get("taskworkers", NS, "good")!.spec as Obj).replicas).toBe(5);
    expect(fake.requests.some((r) => r.path.endsWith("/taskworkers/good/scale") && r.method === "PATCH")).toBe(true);

    const nowhere = await kubectl(kubeconfig, cacheDir, "apply", "-n", "no-such-ns", "-f", await file("good", worker("good", {})));
    expect(nowhere.code).not.toBe(0);
    expect(nowhere.out).toContain('namespaces "no-such-ns" not found');
  });
});
