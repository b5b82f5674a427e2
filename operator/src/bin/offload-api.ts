#!/usr/bin/env node
// offload-api: the run API process. Configuration comes from the environment only.
import { isOffloadError, listenError, redactUrl, startTracing, type Tracing } from "@offload/sdk/internal";
import { pino, type Logger } from "pino";
import { installProcessGuards } from "../api/process-guards.js";
import { startApi, type RunningApi } from "../api/server.js";
import { API_ENV_DOC, loadApiConfig, type ApiConfig } from "../config/api.js";
import { API_LISTEN_SETTINGS, checkDataDir, checkPort, waitForDependencies } from "../config/startup.js";
import type { ClusterConnection } from "../controller/cluster.js";

const USAGE = `Usage: offload-api [--help]

Runs the Offload run API: records task runs in PostgreSQL (or an embedded
PGlite), dispatches them over NATS JetStream, and materializes the events
workers publish. OpenAPI documentation is served at /docs.

Environment:
${Object.entries(API_ENV_DOC)
  .map(([name, doc]) => `  ${name}\n      ${doc}`)
  .join("\n")}

Traces (OpenTelemetry; off unless asked for): OTEL_TRACES_EXPORTER=otlp, or
OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) set, exports the spans of
submits and dispatches over OTLP/HTTP (JSON); OTEL_SERVICE_NAME (default
offload-api), OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS and OTEL_BSP_*
apply as in every OpenTelemetry SDK; OTEL_SDK_DISABLED=true wins.

Exit codes: 0 after a graceful stop (SIGTERM, SIGINT); 1 when PostgreSQL or
NATS did not accept connections (or, with OFFLOAD_AUTH=kubernetes, the
Kubernetes API server did not answer) within OFFLOAD_START_WAIT_SECONDS, or on
a failure at run time; 2 on bad configuration (a bad value, the port in use, a
data folder that cannot be written, no kubeconfig with OFFLOAD_AUTH=kubernetes).
Each start-up failure is one line on stderr naming what was tried and the
variable to change.
`;

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  const unknown = argv.filter((a) => a !== "--help" && a !== "-h");
  if (unknown.length) {
    process.stderr.write(`offload-api: unknown argument ${unknown[0]}; it takes none (configure it with the environment)\n\n${USAGE}`);
    process.exit(2);
  }
  let config: Readonly<ApiConfig>;
  try {
    config = loadApiConfig(process.env);
  } catch (err) {
    if (isOffloadError(err) && err.code === "OFFLOAD_CONFIG") {
      process.stderr.write(`${err.message}\n\nRun offload-api --help for every variable.\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ name: "offload-api", level: config.logLevel });
  // Cheapest first: a taken port or an unwritable folder is known at once, before any wait on a server.
  let cluster: ClusterConnection | undefined;
  try {
    await checkPort(config);
    if (!config.databaseUrl) await checkDataDir(config.dataDir);
    // OFFLOAD_AUTH=kubernetes reviews every caller with the API server: the kubeconfig is found as the controller finds it.
    // Imported only then: @kubernetes/client-node takes a second or more to load.
    const kube = config.auth.mode === "kubernetes" ? await import("../controller/cluster.js") : undefined;
    if (kube) cluster = kube.loadCluster(process.env, undefined, undefined, "offload-api");
    await waitForDependencies(config, config.startWaitSeconds, log);
    if (kube && cluster) await kube.waitForCluster(cluster, config.startWaitSeconds, log, "offload-api");
  } catch (err) {
    if (isOffloadError(err)) exitWith(err.message, err.code === "OFFLOAD_CONFIG" ? 2 : 1, log);
    throw err;
  }
  // Process-wide handlers belong to the process, not to startApi, which an embedding program may call:
  // installed before the API starts and never removed, so they also cover its stop.
  installProcessGuards(log);
  let tracing: Tracing | undefined;
  try {
    tracing = await startTracing("offload-api", log);
  } catch (err) {
    // Traces are a window, not the work: an API that cannot export them still serves.
    log.error({ err }, "could not set up trace export (OTEL_* variables); running without it");
  }
  let api: RunningApi;
  try {
    api = await startApi(config, { logger: log, ...(cluster ? { kubeConfig: cluster.kc } : {}) });
  } catch (err) {
    const taken = listenError(err, { ...API_LISTEN_SETTINGS, host: config.host, port: config.port });
    if (taken) exitWith(taken.message, 2, log);
    // What the process was pointed at, so that "connection refused" says where.
    const tried = `${config.databaseUrl ? `PostgreSQL at ${redactUrl(config.databaseUrl)} (OFFLOAD_DATABASE_URL)` : `the embedded database in ${config.dataDir} (OFFLOAD_DATA_DIR)`}, NATS at ${config.natsServers.map(redactUrl).join(", ")} (OFFLOAD_NATS_URL)`;
    log.fatal({ err }, "failed to start");
    exitWith(`offload-api: failed to start: ${err instanceof Error ? err.message : String(err)}\n  using ${tried}`, 1, log, false);
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      api.log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    api.log.info({ signal }, "stopping");
    api.close().then(
      // The last spans are exported before the exit (bounded by OTEL_EXPORTER_OTLP_TIMEOUT).
      () => void Promise.resolve(tracing?.shutdown()).finally(() => process.exit(0)),
      (err: unknown) => {
        api.log.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The one line for the person at the terminal (stderr), also kept in the structured log, then exit. */
function exitWith(message: string, code: 1 | 2, log: Logger, logIt = true): never {
  if (logIt) log.fatal(message);
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`offload-api: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
