#!/usr/bin/env node
/**
 * offload-controller: reconciles TaskWorker, TaskRun and TaskSchedule custom resources.
 * Configuration comes from the environment (see --help); the Kubernetes
 * connection from the kubeconfig in use or the pod's service account.
 */
import { createServer } from "node:http";
import { ConfigError, isOffloadError, listenError } from "@offload/sdk/internal";
import { pino, type Logger } from "pino";
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { Controller, podNamespace } from "../controller/controller.js";
import { loadCluster, waitForCluster, type ClusterConnection } from "../controller/cluster.js";
import { loadControllerEnv } from "../controller/config.js";
import { exposeTaskWorkerMetrics } from "../controller/metrics.js";

const HELP = `offload-controller: reconciles TaskWorker, TaskRun and TaskSchedule resources (offload.dev/v1alpha1).

Usage: offload-controller [--help]

Kubernetes: the kubeconfig in use (KUBECONFIG, else ~/.kube/config), else
in-cluster (the pod's service account), with its current context.

Environment:
  OFFLOAD_WATCH_NAMESPACE         namespace to watch; empty = all (default "")
  OFFLOAD_NATS_URL                NATS URL(s) given to worker pods
  OFFLOAD_API_URL                 run API: TaskRuns are submitted and TaskSchedules put here; also given to worker pods
  OFFLOAD_API_TOKEN               bearer token for the controller's run API calls
  OFFLOAD_API_TOKEN_SECRET        Secret (key "token") whose value worker pods get as OFFLOAD_API_TOKEN
  OFFLOAD_AUTH                    the run API's auth mode: kubernetes|token|none (default token); kubernetes gives
                                  worker pods a projected ServiceAccount token at /var/run/secrets/offload/token
                                  (OFFLOAD_TOKEN_FILE) instead of OFFLOAD_API_TOKEN
  OFFLOAD_AUTH_AUDIENCE           audience of that token, as the run API expects it (default offload)
  OFFLOAD_NATS_CREDENTIALS_SECRET Secret (keys "user", "password") worker pods get as OFFLOAD_NATS_USER/
                                  OFFLOAD_NATS_PASSWORD, with OFFLOAD_NATS_URL nats://$(OFFLOAD_NATS_USER):$(OFFLOAD_NATS_PASSWORD)@host
  OFFLOAD_LEADER_ELECTION         campaign for a Lease before acting (default true)
  OFFLOAD_LEASE_NAMESPACE         namespace of the Lease (default: the pod's, else the kubeconfig's, else "default")
  OFFLOAD_LEASE_NAME              name of the Lease (default offload-controller)
  OFFLOAD_LEASE_DURATION_SECONDS  lease duration (default 15)
  POD_NAME                        identity in the Lease and Events (default: hostname + random suffix)
  OFFLOAD_CONTROLLER_PORT         /healthz, /readyz, /metrics (default 8082; 0 = any free port)
  OFFLOAD_LOG_LEVEL               trace|debug|info|warn|error|fatal|silent (default info)
  OFFLOAD_RESYNC_SECONDS          full resync period (default 300)
  OFFLOAD_TASKRUN_POLL_SECONDS    poll period of unfinished TaskRuns (default 2)
  OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS
                                  how long a deleted TaskRun waits for its run to be cancelled (and a deleted
                                  TaskSchedule for its schedule to be deleted) while the run API cannot be reached,
                                  before it is let go anyway (default 300)
  OFFLOAD_BACKLOG_SECONDS         refresh period of TaskWorker status.backlog from the run API (default 15)
  OFFLOAD_CONTROLLER_WORKERS      concurrent reconciles (default 4)
  OFFLOAD_START_WAIT_SECONDS      how long to wait at start for the Kubernetes API server to answer (default 30)

Exit codes: 0 after a clean stop (SIGTERM, SIGINT); 1 when the Kubernetes API
server did not answer within OFFLOAD_START_WAIT_SECONDS, or on a failure at
run time; 2 on bad configuration (a bad value, no kubeconfig or a broken one,
the port in use). Each start-up failure is one line on stderr naming what was
tried (kubeconfig, context, server) and what to change.
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  let env;
  try {
    env = loadControllerEnv();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ name: "offload-controller", level: env.OFFLOAD_LOG_LEVEL });
  let conn: ClusterConnection;
  try {
    conn = loadCluster();
  } catch (err) {
    if (isOffloadError(err)) exitWith(err.message, 2, log);
    throw err;
  }
  const kc = conn.kc;
  const leaseNamespace = env.OFFLOAD_LEASE_NAMESPACE ?? podNamespace() ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";

  const controller = new Controller({
    kc,
    log,
    identity: env.identity,
    namespace: env.OFFLOAD_WATCH_NAMESPACE,
    workerDefaults: { natsUrl: env.OFFLOAD_NATS_URL, apiUrl: env.OFFLOAD_API_URL, apiTokenSecret: env.OFFLOAD_API_TOKEN_SECRET, natsCredentialsSecret: env.OFFLOAD_NATS_CREDENTIALS_SECRET, auth: { mode: env.OFFLOAD_AUTH, audience: env.OFFLOAD_AUTH_AUDIENCE } },
    api: env.OFFLOAD_API_URL ? { url: env.OFFLOAD_API_URL, token: env.OFFLOAD_API_TOKEN } : undefined,
    resyncMs: env.OFFLOAD_RESYNC_SECONDS * 1000,
    pollMs: env.OFFLOAD_TASKRUN_POLL_SECONDS * 1000,
    cancelGiveUpMs: env.OFFLOAD_TASKRUN_CANCEL_GIVE_UP_SECONDS * 1000,
    workers: env.OFFLOAD_CONTROLLER_WORKERS,
    backlogMs: env.OFFLOAD_BACKLOG_SECONDS * 1000,
    leaderElection: {
      enabled: env.OFFLOAD_LEADER_ELECTION,
      namespace: leaseNamespace,
      name: env.OFFLOAD_LEASE_NAME,
      leaseDurationMs: env.OFFLOAD_LEASE_DURATION_SECONDS * 1000,
    },
  });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "offload_controller_" });
  new Gauge({ name: "offload_controller_leader", help: "1 while this replica holds the leader Lease", registers: [registry], collect() { this.set(controller.isLeader ? 1 : 0); } });
  new Gauge({ name: "offload_controller_queue_length", help: "Keys waiting to be reconciled", registers: [registry], collect() { this.set(controller.queueLength); } });
  new Gauge({ name: "offload_controller_reconciles", help: "Reconciles done since start", registers: [registry], collect() { this.set(controller.stats.reconciles); } });
  new Gauge({ name: "offload_controller_reconcile_errors", help: "Reconciles that failed since start", registers: [registry], collect() { this.set(controller.stats.errors); } });
  exposeTaskWorkerMetrics(registry, controller.metricsSource);

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    if (path === "/readyz") {
      const ok = controller.ready;
      return void res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ready\n" : "caches not synced\n");
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  // A rejection, not a throw in the "error" listener: that would be an uncaught exception with a stack.
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(env.OFFLOAD_CONTROLLER_PORT, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    const config = listenError(err, { process: "offload-controller", host: "0.0.0.0", port: env.OFFLOAD_CONTROLLER_PORT, portSetting: "OFFLOAD_CONTROLLER_PORT", hostSetting: "(every address)" });
    if (config) exitWith(config.message, 2, log);
    exitWith(`offload-controller: cannot listen on port ${env.OFFLOAD_CONTROLLER_PORT} (OFFLOAD_CONTROLLER_PORT): ${err instanceof Error ? err.message : String(err)}`, 1, log);
  }
  const addr = server.address();
  log.info(
    { port: typeof addr === "object" && addr ? addr.port : env.OFFLOAD_CONTROLLER_PORT, server: conn.server, context: conn.context, kubeconfig: conn.source, identity: env.identity, leaderElection: env.OFFLOAD_LEADER_ELECTION, lease: `${leaseNamespace}/${env.OFFLOAD_LEASE_NAME}` },
    "offload-controller started",
  );

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    controller
      .stop()
      .catch((err: unknown) => log.error({ err }, "error while stopping"))
      .finally(() => {
        server.close();
        log.info("stopped");
        process.exit(0);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // /healthz answers during the wait (the pod is alive), /readyz stays 503 until the caches sync.
  try {
    await waitForCluster(conn, env.OFFLOAD_START_WAIT_SECONDS, log);
  } catch (err) {
    if (isOffloadError(err)) exitWith(err.message, err.code === "OFFLOAD_CONFIG" ? 2 : 1, log);
    throw err;
  }
  if (stopping) return;
  await controller.start();
}

/** The one line for the person at the terminal (stderr), also kept in the structured log, then exit. */
function exitWith(message: string, code: 1 | 2, log: Logger): never {
  log.fatal(message);
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

main().catch((err: unknown) => {
  process.stderr.write(`offload-controller: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
