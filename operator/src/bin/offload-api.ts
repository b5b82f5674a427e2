#!/usr/bin/env node
// offload-api: the run API process. Configuration comes from the environment only.
import { isOffloadError } from "@offload/sdk/internal";
import { startApi } from "../api/server.js";
import { API_ENV_DOC, loadApiConfig } from "../config/api.js";

const USAGE = `Usage: offload-api [--help]

Runs the Offload run API: records task runs in PostgreSQL (or an embedded
PGlite), dispatches them over NATS JetStream, and materializes the events
workers publish. OpenAPI documentation is served at /docs.

Environment:
${Object.entries(API_ENV_DOC)
  .map(([name, doc]) => `  ${name}\n      ${doc}`)
  .join("\n")}

Exit codes: 0 after a graceful stop (SIGTERM, SIGINT), 1 on a failure at run
time or start, 2 on bad configuration.
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
  let config;
  try {
    config = loadApiConfig(process.env);
  } catch (err) {
    if (isOffloadError(err) && err.code === "OFFLOAD_CONFIG") {
      process.stderr.write(`${err.message}\n\nRun offload-api --help for every variable.\n`);
      process.exit(2);
    }
    throw err;
  }
  const api = await startApi(config);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      api.log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    api.log.info({ signal }, "stopping");
    api.close().then(
      () => process.exit(0),
      (err: unknown) => {
        api.log.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`offload-api: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
