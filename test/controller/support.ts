import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startProcess, type Child } from "../support/index.js";
import type { FakeKube } from "../k8s/index.js";

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const CONTROLLER_BIN = join(ROOT, "operator/dist/bin/offload-controller.js");

/** Starts the built offload-controller against `fake`. */
export async function startController(fake: FakeKube, name: string, env: Record<string, string | undefined> = {}): Promise<Child> {
  const kubeconfig = await fake.writeKubeconfig();
  // The chart creates the namespace the controller's Lease lives in; a real server refuses writes to a missing one.
  fake.ensureNamespace(env.OFFLOAD_LEASE_NAMESPACE ?? "offload-system");
  return startProcess(name, process.execPath, [CONTROLLER_BIN], {
    KUBECONFIG: kubeconfig,
    POD_NAME: name,
    OFFLOAD_CONTROLLER_PORT: "0",
    OFFLOAD_LOG_LEVEL: "debug",
    OFFLOAD_LEASE_NAMESPACE: "offload-system",
    OFFLOAD_LEASE_DURATION_SECONDS: "2",
    OFFLOAD_RESYNC_SECONDS: "30",
    OFFLOAD_TASKRUN_POLL_SECONDS: "0.2",
    OFFLOAD_API_URL: undefined,
    OFFLOAD_API_TOKEN: undefined,
    OFFLOAD_API_TOKEN_SECRET: undefined,
    OFFLOAD_NATS_URL: undefined,
    OFFLOAD_WATCH_NAMESPACE: undefined,
    ...env,
  });
}

/** A task as the stub's `GET /v1/tasks` lists it (the run API's TaskInfo). */
export interface StubTask {
  name: string;
  backlog: number;
  inFlight: number;
  workers: { workerId: string; concurrency: number; inFlight: number; lastSeenAt: string }[];
}

/**
 * A stand-in run API: GET /v1/tasks answers `tasks` with a `version` that
 * `setTasks` bumps, long-polling as the real one does (`since` equal to the
 * current version and `wait` > 0: it answers on the next `setTasks` or after
 * `wait` seconds); POST /v1/runs refuses `rejected-task` with 400 and
 * accepts anything else; GET answers COMPLETED, except for a task named
 * `slow-…`, which stays RUNNING; POST /v1/runs/:id/cancel cancels a run not
 * finished (409 for a COMPLETED one). While `down`, it cuts every connection
 * (as an unreachable API), noting each request in `refused`.
 */
export interface StubApi {
  url: string;
  posts: { task: string; idempotencyKey?: string; parameters?: unknown; namespace?: string; auth?: string }[];
  /** Run ids that POST /v1/runs/:id/cancel was answered for. */
  cancels: string[];
  /** `METHOD path` of the requests cut while `down`. */
  refused: string[];
  down: boolean;
  /** What GET /v1/tasks lists; change it with {@link setTasks}. */
  tasks: StubTask[];
  /** Replaces the task list and wakes the long-polls waiting on the old one. */
  setTasks(tasks: StubTask[]): void;
  /** The versions GET /v1/tasks answered, in order (a test can wait until a version was seen). */
  served: string[];
  stop(): Promise<void>;
}

export async function startStubApi(): Promise<StubApi> {
  const runs = new Map<string, Record<string, unknown>>();
  let version = 1;
  let waiters: (() => void)[] = [];
  const stub: Omit<StubApi, "url" | "stop"> = {
    posts: [],
    cancels: [],
    refused: [],
    down: false,
    tasks: [],
    served: [],
    setTasks(tasks: StubTask[]): void {
      stub.tasks = tasks;
      version += 1;
      for (const wake of waiters.splice(0)) wake();
    },
  };
  const { posts } = stub;
  const server: Server = createServer((req, res) => {
    if (stub.down) {
      stub.refused.push(`${req.method} ${req.url}`);
      req.socket.destroy();
      return;
    }
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const json = (status: number, v: unknown): void => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(v));
      };
      const url = new URL(req.url ?? "/", "http://stub");
      if (req.method === "GET" && url.pathname === "/v1/tasks") {
        const answer = (): void => {
          stub.served.push(String(version));
          json(200, { version: String(version), tasks: stub.tasks });
        };
        // As the real one: a `since` other than the current version, or no wait, answers at once.
        const wait = Number(url.searchParams.get("wait") ?? 0);
        if (url.searchParams.get("since") !== String(version) || !(wait > 0)) return answer();
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== wake);
          answer();
        }, wait * 1000);
        const wake = (): void => {
          clearTimeout(timer);
          answer();
        };
        waiters.push(wake);
        req.socket.once("close", () => {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== wake);
        });
        return;
      }
      if (req.method === "POST" && req.url === "/v1/runs") {
        const b = JSON.parse(body) as { task: string; idempotencyKey?: string; parameters?: unknown; namespace?: string };
        posts.push({ ...b, auth: req.headers.authorization });
        if (b.task === "rejected-task") {
          return json(400, { code: "OFFLOAD_VALIDATION", message: "no worker serves task rejected-task", statusCode: 400, issues: [{ path: "task", message: "unknown task" }] });
        }
        const existing = [...runs.values()].find((r) => r.idempotencyKey === b.idempotencyKey);
        if (existing) return json(202, existing);
        const id = `run-${runs.size + 1}`;
        const t = new Date().toISOString();
        const run = {
          id, task: b.task, state: "PENDING", parameters: b.parameters ?? null, attempts: 0, createdAt: t, scheduledAt: t,
          startedAt: null, finishedAt: null, updatedAt: t, result: null, resultRef: null, error: null, cacheKey: null, cached: false,
          idempotencyKey: b.idempotencyKey ?? null, workerId: null, namespace: b.namespace ?? "default",
          priority: 3, concurrencyKey: null, rateLimitKey: null, waitingFor: null,
        };
        runs.set(id, run);
        return json(202, run);
      }
      const m = /^\/v1\/runs\/([^/]+)(\/cancel)?$/.exec(req.url ?? "");
      const run = m ? runs.get(m[1]!) : undefined;
      if (m && !run) return json(404, { code: "OFFLOAD_RUN_NOT_FOUND", message: "no such run", statusCode: 404 });
      const t = new Date().toISOString();
      if (req.method === "POST" && m?.[2] && run) {
        stub.cancels.push(run.id as string);
        if (run.state === "COMPLETED") return json(409, { code: "OFFLOAD_RUN_FINISHED", message: "the run already finished", statusCode: 409 });
        Object.assign(run, { state: "CANCELLED", finishedAt: run.finishedAt ?? t });
        return json(200, run);
      }
      if (req.method === "GET" && m && !m[2] && run) {
        if (run.state === "CANCELLED") return json(200, run);
        if (String(run.task).startsWith("slow-")) Object.assign(run, { state: "RUNNING", attempts: 1, startedAt: run.startedAt ?? t });
        else Object.assign(run, { state: "COMPLETED", attempts: 1, startedAt: run.startedAt ?? t, finishedAt: run.finishedAt ?? t, result: { echoed: run.parameters, big: "x".repeat(400) } });
        return json(200, run);
      }
      json(404, { code: "OFFLOAD_ROUTE_NOT_FOUND", message: "no route", statusCode: 404 });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** A TaskWorker object. */
export function taskWorker(name: string, namespace: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: "offload.dev/v1alpha1", kind: "TaskWorker", metadata: { name, namespace }, spec };
}

/** A TaskRun object. */
export function taskRun(name: string, namespace: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: "offload.dev/v1alpha1", kind: "TaskRun", metadata: { name, namespace }, spec };
}
