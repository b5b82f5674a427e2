#!/usr/bin/env node
/**
 * offload-controller: reconciles TaskWorker and TaskRun custom resources.
 * Configuration comes from the environment (see --help); the Kubernetes
 * connection from the kubeconfig in use or the pod's service account.
 */
import { createServer } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "@offload/sdk/internal";
import { pino } from "pino";
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { Controller, podNamespace } from "../controller/controller.js";
import { loadControllerEnv } from "../controller/config.js";

const HELP = `offload-controller: reconciles TaskWorker and TaskRun resources (offload.dev/v1alpha1).

Usage: offload-controller [--help]

Kubernetes: the kubeconfig in use (KUBECONFIG or ~/.kube/config), else in-cluster.

Environment:
  OFFLOAD_WATCH_NAMESPACE         namespace to watch; empty = all (default "")
  OFFLOAD_NATS_URL                NATS URL(s) given to worker pods
  OFFLOAD_API_URL                 run API: TaskRuns are submitted here; also given to worker pods
  OFFLOAD_API_TOKEN               bearer token for the controller's run API calls
  OFFLOAD_API_TOKEN_SECRET        Secret (key "token") whose value worker pods get as OFFLOAD_API_TOKEN
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
                                  how long a deleted TaskRun waits for its run to be cancelled while the run API
                                  cannot be reached, before it is let go uncancelled (default 300)
  OFFLOAD_BACKLOG_SECONDS         refresh period of TaskWorker status.backlog from the run API (default 15)
  OFFLOAD_CONTROLLER_WORKERS      concurrent reconciles (default 4)
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
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    log.fatal("no Kubernetes cluster configured: set KUBECONFIG or run in a pod");
    process.exit(2);
  }
  const leaseNamespace = env.OFFLOAD_LEASE_NAMESPACE ?? podNamespace() ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";

  const controller = new Controller({
    kc,
    log,
    identity: env.identity,
    namespace: env.OFFLOAD_WATCH_NAMESPACE,
    workerDefaults: { natsUrl: env.OFFLOAD_NATS_URL, apiUrl: env.OFFLOAD_API_URL, apiTokenSecret: env.OFFLOAD_API_TOKEN_SECRET, natsCredentialsSecret: env.OFFLOAD_NATS_CREDENTIALS_SECRET },
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
  await new Promise<void>((resolve) => server.listen(env.OFFLOAD_CONTROLLER_PORT, resolve));
  const addr = server.address();
  log.info(
    { port: typeof addr === "object" && addr ? addr.port : env.OFFLOAD_CONTROLLER_PORT, server: cluster.server, identity: env.identity, leaderElection: env.OFFLOAD_LEADER_ELECTION, lease: `${leaseNamespace}/${env.OFFLOAD_LEASE_NAME}` },
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
  await controller.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`offload-controller: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
