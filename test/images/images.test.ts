/**
 * The images as a cluster runs them: built by podman from the Dockerfile
 * (scripts/images/build.ts, what `npm run images` runs), started as containers
 * on the host's network against a real nats-server and PostgreSQL on loopback,
 * each on a read-only root filesystem with only /tmp writable, as a non-root
 * user, with every capability dropped and no privilege escalation, as the chart
 * runs its pods. A missing podman fails this file (setup.sh installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { buildImages, type Target } from "../../scripts/images/build.js";
import { requireTools, run } from "../../scripts/images/podman.js";
import {
  freePort,
  killAll,
  startProcess,
  startServers,
  untilReady,
  waitForRun,
  type Child,
  type NatsServer,
  type PostgresServer,
} from "../support/index.js";

// Unique per test run, so two runs (or a leftover of a killed one) never share a container.
const RUN_ID = `offload-it-${process.pid}-${randomBytes(3).toString("hex")}`;
const TOKEN = randomBytes(16).toString("hex");
// The images this file builds and uses: their own tag, so a run never replaces images a user built.
const TAG = "test";

/** What the chart's containerSecurityContext and its /tmp emptyDir amount to, in podman's words. */
const AS_THE_CHART_RUNS_IT = [
  "--network", "host", // loopback only on this machine: the servers listen on 127.0.0.1
  "--read-only",
  "--read-only-tmpfs=false", // podman would otherwise make /run, /tmp and /var/tmp writable
  "--tmpfs", "/tmp",
  "--cap-drop=ALL",
  "--security-opt", "no-new-privileges",
];
// A pod gets only the volumes it declares: the image's VOLUME is not mounted in Kubernetes.
const NO_IMAGE_VOLUMES = ["--image-volume", "ignore"];

const containers: string[] = [];
const build = new AbortController();
let images: Record<Target, string>;
let servers: { nats: NatsServer; postgres: PostgresServer } | undefined;

/** `podman run` in the foreground (output kept by the Child), removed in afterAll whatever happens. */
function startContainer(role: string, image: string, env: Record<string, string>, podmanArgs: string[] = [], command: string[] = []): { name: string; child: Child } {
  const name = `${RUN_ID}-${role}`;
  containers.push(name);
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  const child = startProcess(`container ${role}`, "podman", ["run", "--rm", "--name", name, ...AS_THE_CHART_RUNS_IT, ...podmanArgs, ...envArgs, image, ...command]);
  return { name, child };
}

const exec = (name: string, ...cmd: string[]): Promise<string> => run("podman", ["exec", name, ...cmd]).then((s) => s.trim());

async function api<T>(base: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface RunRecord {
  id: string;
  task: string;
  state: string;
  result: unknown;
  workerId: string | null;
  attempts: number;
}

beforeAll(async () => {
  requireTools("podman");
  const log: string[] = [];
  try {
    // One podman build per target, one after the other: the shared build stage
    // comes from the layer cache after the first, and 2 cores fit one build.
    // NODE_IMAGE, as for `npm run images`: a machine that reaches a registry may name a real base image.
    images = await buildImages({
      tag: TAG,
      nodeImage: process.env.NODE_IMAGE || undefined,
      signal: build.signal,
      progress: (l) => log.push(l),
      output: (l) => log.push(l),
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- build output ---\n${log.slice(-60).join("\n")}`);
  }
  servers = await startServers();
}, 30 * 60_000);

afterAll(async () => {
  build.abort(new Error("test finished"));
  await killAll();
  if (containers.length) await run("podman", ["rm", "--force", "--volumes", "--time", "0", "--ignore", ...containers]).catch(() => undefined);
  await servers?.nats.stop();
  await servers?.postgres.stop();
}, 120_000);

describe("the images, run as containers the way the chart runs them", () => {
  it("a run POSTed to the control-plane container is executed by the example image's worker container, to COMPLETED", async () => {
    const { nats, postgres } = servers!;
    const databaseUrl = await postgres.createDatabase(`images_${randomBytes(4).toString("hex")}`);
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const apiContainer = startContainer("api", images["control-plane"], {
      OFFLOAD_API_PORT: String(apiPort),
      OFFLOAD_API_HOST: "127.0.0.1",
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_DATABASE_URL: databaseUrl,
      OFFLOAD_API_TOKEN: TOKEN,
    }, ["--user", "1000:1000", ...NO_IMAGE_VOLUMES]);
    await untilReady(apiContainer.child, "the run API container to be ready", `${apiUrl}/readyz`, 120_000);
    // The dashboard is built into the image: its page is served (open, it holds no data), its script loads.
    const page = await fetch(`${apiUrl}/ui/`);
    expect(page.status).toBe(200);
    const script = /<script type="module"[^>]* src="(\/ui\/assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
    expect(script).toBeDefined();
    expect((await fetch(`${apiUrl}${script}`)).status).toBe(200);

    const workerPort = await freePort();
    const worker = startContainer("worker", images.examples, {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_API_URL: apiUrl,
      OFFLOAD_API_TOKEN: TOKEN,
      OFFLOAD_WORKER_PORT: String(workerPort),
      OFFLOAD_CONCURRENCY: "2",
    }, ["--user", "1000:1000", ...NO_IMAGE_VOLUMES]);
    await untilReady(worker.child, "the example worker container to be ready", `http://127.0.0.1:${workerPort}/readyz`, 120_000);
    // The worker names itself (<hostname>-<pid>-<random>) in its ready line; a run it executes carries that id.
    await worker.child.waitForOutput(/"msg":"worker ready"/);
    const ready = worker.child.output().split("\n").find((l) => l.includes('"msg":"worker ready"'))!;
    const { workerId, tasks } = JSON.parse(ready) as { workerId: string; tasks: string[] };
    // OFFLOAD_MODULE comes from the examples image alone: the container was given no module.
    expect(tasks).toEqual(expect.arrayContaining(["send-welcome-email", "text-report"]));

    for (const name of [apiContainer.name, worker.name]) {
      expect(await exec(name, "id", "-u")).toBe("1000");
      await expect(exec(name, "touch", "/app/written")).rejects.toThrow(/Read-only file system/);
      // What the chart's emptyDir gives: /tmp is writable.
      expect(await exec(name, "sh", "-c", "touch /tmp/written && echo ok")).toBe("ok");
      expect(await exec(name, "sh", "-c", "grep ^CapEff /proc/self/status")).toMatch(/^CapEff:\s+0+$/);
    }

    const created = await api<RunRecord>(apiUrl, "/v1/runs", { task: "text-report", parameters: { text: "the cat and the hat and the bat", top: 2 } });
    expect(created.status).toBe(202);
    const done = await waitForRun(
      async () => (await api<RunRecord>(apiUrl, `/v1/runs/${created.body.id}`)).body,
      (r) => ["COMPLETED", "FAILED", "CANCELLED"].includes(r.state),
      "the run to finish in the worker container",
      60_000,
    );
    expect(done).toMatchObject({ id: created.body.id, task: "text-report", state: "COMPLETED", attempts: 1, workerId });
    expect(done.result).toEqual({ words: 8, distinct: 5, top: [{ word: "the", count: 3 }, { word: "and", count: 2 }] });
  }, 300_000);

  it("the control-plane image's controller command answers --help", async () => {
    containers.push(`${RUN_ID}-controller-help`);
    const out = await run("podman", [
      "run", "--rm", "--name", `${RUN_ID}-controller-help`, ...AS_THE_CHART_RUNS_IT, ...NO_IMAGE_VOLUMES, "--user", "1000:1000",
      images["control-plane"], "node", "operator/dist/bin/offload-controller.js", "--help",
    ]);
    expect(out).toContain("Usage: offload-controller");
    expect(out).toContain("OFFLOAD_WATCH_NAMESPACE");
  }, 120_000);

  it("the control-plane image with its defaults and no database URL records runs in its embedded database, as its own non-root user", async () => {
    const port = await freePort();
    const apiUrl = `http://127.0.0.1:${port}`;
    // No --user, no OFFLOAD_DATABASE_URL, no OFFLOAD_DATA_DIR: the image's USER and
    // its data VOLUME (which podman and docker mount by default). Port and NATS only
    // because the defaults (8080, 4222) may be taken here.
    const c = startContainer("api-defaults", images["control-plane"], { OFFLOAD_API_PORT: String(port), OFFLOAD_NATS_URL: servers!.nats.url, OFFLOAD_API_TOKEN: TOKEN });
    await untilReady(c.child, "the run API container with its defaults to be ready", `${apiUrl}/readyz`, 120_000);
    expect(await exec(c.name, "id", "-u")).toBe("1000");
    const created = await api<RunRecord>(apiUrl, "/v1/runs", { task: "nobody-serves-this", parameters: { n: 1 } });
    expect(created.status).toBe(202);
    expect((await api<RunRecord>(apiUrl, `/v1/runs/${created.body.id}`)).body).toMatchObject({ id: created.body.id, task: "nobody-serves-this" });
    // The embedded database is in the image's data folder (its VOLUME), not under the read-only /app.
    expect(await exec(c.name, "sh", "-c", 'echo "$OFFLOAD_DATA_DIR" && ls "$OFFLOAD_DATA_DIR" | head -1')).toMatch(/^\/var\/lib\/offload\n\S+/);
  }, 180_000);

  it("the control-plane image without a writable data folder says in one line which setting to change, exit 2", async () => {
    // As Kubernetes runs it: a read-only root and the image's VOLUME not mounted (pods get only the volumes they declare).
    const port = await freePort();
    const c = startContainer("api-no-volume", images["control-plane"], { OFFLOAD_API_PORT: String(port), OFFLOAD_NATS_URL: servers!.nats.url }, NO_IMAGE_VOLUMES);
    expect(await c.child.exited).toBe(2);
    expect(c.child.output()).toMatch(/OFFLOAD_DATA_DIR/);
    expect(c.child.output()).toMatch(/\/var\/lib\/offload/);
  }, 120_000);
});
