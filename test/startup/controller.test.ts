import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, killAll } from "../support/index.js";
import { CONTROLLER_BIN, occupyPort, run, tempDir } from "./helpers.js";

/** A kubeconfig whose one context points at `server`. */
function kubeconfig(server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: { server: "${server}", insecure-skip-tls-verify: true }
contexts:
- name: dev-ctx
  context: { cluster: dev, user: dev }
current-context: dev-ctx
users:
- name: dev
  user: { token: not-a-real-token }
`;
}

describe("offload-controller: start-up errors say what to do", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  // An empty home: no ~/.kube/config to fall back on, whoever runs the tests.
  let home: string;
  beforeAll(async () => {
    tmp = await tempDir("offload-startup-kube-");
    home = join(tmp.path, "home");
    await mkdir(home);
  });
  afterAll(async () => {
    await killAll();
    await tmp.remove();
  });
  const env = (extra: Record<string, string>): Record<string, string> => ({ HOME: home, OFFLOAD_CONTROLLER_PORT: "0", ...extra });
  const NOT_IN_A_POD = ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"];

  it("no kubeconfig at all: one line at once naming KUBECONFIG, ~/.kube/config and in-cluster, exit 2 (no silent localhost:8080)", async () => {
    const { code, err, out } = await run("controller-no-kubeconfig", CONTROLLER_BIN, [], env({ OFFLOAD_START_WAIT_SECONDS: "600" }), NOT_IN_A_POD);
    expect(code).toBe(2);
    // The in-cluster part depends on the machine: a runner that is itself a pod has the service-account token
    // (KUBERNETES_SERVICE_HOST is removed above, so it is still not taken for in-cluster).
    const token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    const inCluster = existsSync(token) ? `${token} exists but KUBERNETES_SERVICE_HOST is unset` : `this is not a pod (no ${token})`;
    expect(err.trim()).toBe(
      `offload-controller: no Kubernetes cluster configured: KUBECONFIG is unset, ${join(home, ".kube/config")} does not exist, and ${inCluster}; ` +
        "set KUBECONFIG to a kubeconfig file, or run the controller in the cluster (helm install offload charts/offload)",
    );
    expect(out).not.toContain("localhost:8080");
  });

  it("a kubeconfig that is not valid YAML: one line naming the file, exit 2", async () => {
    const file = join(tmp.path, "broken.yaml");
    await writeFile(file, "clusters: [\n");
    const { code, err } = await run("controller-bad-kubeconfig", CONTROLLER_BIN, [], env({ KUBECONFIG: file }));
    expect(code).toBe(2);
    expect(err).toMatch(new RegExp(`^offload-controller: cannot read the kubeconfig ${file} \\(KUBECONFIG\\): .+; check it with kubectl --kubeconfig ${file} config view\\n$`));
  });

  it("KUBECONFIG naming a file that does not exist: one line naming it, exit 2", async () => {
    const file = join(tmp.path, "nowhere.yaml");
    const { code, err } = await run("controller-missing-kubeconfig", CONTROLLER_BIN, [], env({ KUBECONFIG: file }));
    expect(code).toBe(2);
    expect(err).toContain(`offload-controller: KUBECONFIG names ${file}, which does not exist`);
  });

  it("a kubeconfig whose current-context is missing: one line naming the contexts it has, exit 2", async () => {
    const file = join(tmp.path, "no-context.yaml");
    await writeFile(file, kubeconfig("https://127.0.0.1:1").replace("current-context: dev-ctx", "current-context: prod"));
    const { code, err } = await run("controller-no-context", CONTROLLER_BIN, [], env({ KUBECONFIG: file }));
    expect(code).toBe(2);
    expect(err).toContain(`has no context "prod" (its current-context); pick one with kubectl config use-context NAME (it has: dev-ctx)`);
  });

  it("an API server that does not answer: one progress line, then one line naming kubeconfig, context and server, exit 1", async () => {
    const closed = await freePort();
    const file = join(tmp.path, "closed.yaml");
    await writeFile(file, kubeconfig(`https://127.0.0.1:${closed}`));
    const { code, err, out } = await run("controller-no-cluster", CONTROLLER_BIN, [], env({ KUBECONFIG: file, OFFLOAD_START_WAIT_SECONDS: "1" }));
    expect(code).toBe(1);
    expect(err.trim()).toBe(
      `offload-controller: cannot reach the Kubernetes API server at https://127.0.0.1:${closed} (context "dev-ctx", kubeconfig KUBECONFIG=${file}) within 1 s ` +
        "(OFFLOAD_START_WAIT_SECONDS): ECONNREFUSED (connection refused: nothing listens there); " +
        "check that the cluster runs and that kubectl --context dev-ctx version answers, or set KUBECONFIG / pick another context",
    );
    // One line per attempt at most every 5 s: within a 1 s wait, exactly the first.
    expect(out.match(/waiting for the Kubernetes API server at/g)).toHaveLength(1);
  });

  it("KUBECONFIG with two files: the first file's current-context is used, as kubectl does, not the last one's", async () => {
    const [firstPort, secondPort] = [await freePort(), await freePort()];
    const first = join(tmp.path, "first.yaml");
    const second = join(tmp.path, "second.yaml");
    await writeFile(first, kubeconfig(`https://127.0.0.1:${firstPort}`));
    await writeFile(second, kubeconfig(`https://127.0.0.1:${secondPort}`).replaceAll("dev", "second"));
    const { code, err } = await run("controller-two-kubeconfigs", CONTROLLER_BIN, [], env({ KUBECONFIG: `${first}${delimiter}${second}`, OFFLOAD_START_WAIT_SECONDS: "1" }));
    expect(code).toBe(1);
    expect(err).toContain(`cannot reach the Kubernetes API server at https://127.0.0.1:${firstPort} (context "dev-ctx", kubeconfig KUBECONFIG=${first}${delimiter}${second})`);
  });

  it("KUBECONFIG with two files defining the same names: one line naming the later file, exit 2", async () => {
    const first = join(tmp.path, "same-1.yaml");
    const second = join(tmp.path, "same-2.yaml");
    await writeFile(first, kubeconfig("https://127.0.0.1:1"));
    await writeFile(second, kubeconfig("https://127.0.0.1:2"));
    const { code, err } = await run("controller-duplicate-kubeconfigs", CONTROLLER_BIN, [], env({ KUBECONFIG: `${first}${delimiter}${second}` }));
    expect(code).toBe(2);
    expect(err).toMatch(new RegExp(`^offload-controller: cannot merge the kubeconfig ${second} \\(KUBECONFIG\\) with the files before it: Duplicate cluster: dev, .+\\n$`));
  });

  it("an API server that refuses the credentials (401): one line at once naming server and context, exit 2, no wait", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as { port: number };
    const file = join(tmp.path, "unauthorized.yaml");
    await writeFile(file, kubeconfig(`http://127.0.0.1:${port}`));
    try {
      // A wait of 600 s: the test ends only because a 401 ends the wait at once.
      const { code, err } = await run("controller-401", CONTROLLER_BIN, [], env({ KUBECONFIG: file, OFFLOAD_START_WAIT_SECONDS: "600" }));
      expect(code).toBe(2);
      expect(err.trim()).toBe(
        `offload-controller: the Kubernetes API server at http://127.0.0.1:${port} (context "dev-ctx", kubeconfig KUBECONFIG=${file}) refused the credentials (401 Unauthorized); ` +
          "renew them, e.g. log in again, or pick another context",
      );
    } finally {
      server.close();
    }
  });

  it("its port in use: one line naming it and OFFLOAD_CONTROLLER_PORT, exit 2", async () => {
    const busy = await occupyPort();
    if (!busy) throw new Error("could not occupy a port");
    const file = join(tmp.path, "port.yaml");
    await writeFile(file, kubeconfig("https://127.0.0.1:1"));
    try {
      const { code, err } = await run("controller-port", CONTROLLER_BIN, [], { ...env({ KUBECONFIG: file, OFFLOAD_START_WAIT_SECONDS: "600" }), OFFLOAD_CONTROLLER_PORT: String(busy.port) });
      expect(code).toBe(2);
      expect(err.trim()).toBe(`offload-controller: port ${busy.port} (OFFLOAD_CONTROLLER_PORT) is in use by another process; pick another port, or 0 for any free port`);
    } finally {
      busy.server.close();
    }
  });
});
