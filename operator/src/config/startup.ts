/**
 * What `offload-api` checks before it starts the run API, so that each
 * problem a user can cause at start ends in one line naming the setting to
 * change, instead of a stack from deep inside PGlite, pg or nats.js.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import {
  ConfigError,
  UnreachableError,
  listenError,
  natsEndpoint,
  postgresEndpoint,
  waitForEndpoints,
  type Endpoint,
} from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { ApiConfig } from "./api.js";

/** The settings named in the port message. */
export const API_LISTEN_SETTINGS = { process: "offload-api", portSetting: "OFFLOAD_API_PORT", hostSetting: "OFFLOAD_API_HOST" } as const;

/**
 * Fails fast, before the slower steps, if the API's port cannot be had: binds
 * it and lets it go. Another process may still take it in between; the real
 * `listen()` error is translated the same way by the caller.
 */
export async function checkPort(config: Pick<ApiConfig, "host" | "port">): Promise<void> {
  if (config.port === 0) return;
  await new Promise<void>((done, fail) => {
    const server = createServer();
    server.once("error", (err) => fail(listenError(err, { ...API_LISTEN_SETTINGS, host: config.host, port: config.port }) ?? err));
    server.listen({ host: config.host, port: config.port, exclusive: true }, () => server.close(() => done()));
  });
}

/**
 * With no `OFFLOAD_DATABASE_URL`, the embedded database lives in
 * `OFFLOAD_DATA_DIR`: creates it and writes a file there. Root ignores
 * permission bits, so the write (not an access check) is what tells a
 * read-only filesystem, or a path under a file, from a usable folder.
 */
export async function checkDataDir(dataDir: string): Promise<void> {
  const dir = resolve(dataDir);
  const probe = join(dir, `.offload-write-check-${randomBytes(4).toString("hex")}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, "");
    await rm(probe, { force: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(
      `offload-api: cannot create or write the data folder ${dir} (OFFLOAD_DATA_DIR${dataDir === ".offload" ? ", default .offload in the working directory" : ""}): ` +
        `${describeFsError(e)}; set OFFLOAD_DATA_DIR to a writable folder (e.g. a mounted volume), or OFFLOAD_DATABASE_URL to use PostgreSQL instead`,
    );
  }
}

function describeFsError(e: NodeJS.ErrnoException): string {
  const meaning: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only filesystem",
    ENOTDIR: "a part of the path is a file, not a folder",
    EEXIST: "a file of that name is in the way",
    ENOSPC: "no space left on the device",
  };
  return e.code && meaning[e.code] ? `${e.code} (${meaning[e.code]})` : e.message;
}

/**
 * Waits up to `waitSeconds` for PostgreSQL (when configured over TCP) and
 * NATS to accept connections, both at once, logging progress every few
 * seconds. Throws an `UnreachableError` naming the URL(s) tried and the
 * variable to check.
 */
export async function waitForDependencies(config: Pick<ApiConfig, "databaseUrl" | "natsServers">, waitSeconds: number, log: Logger): Promise<void> {
  const waits: Promise<void>[] = [];
  const pg = config.databaseUrl ? postgresEndpoint(config.databaseUrl) : undefined;
  if (pg) waits.push(waitFor("PostgreSQL", "OFFLOAD_DATABASE_URL", [pg], waitSeconds, log, "start PostgreSQL there, or correct the URL"));
  const nats = config.natsServers.flatMap((u) => natsEndpoint(u) ?? []);
  if (nats.length) {
    waits.push(waitFor("NATS", "OFFLOAD_NATS_URL", nats, waitSeconds, log, "start nats-server with JetStream (nats-server -js) there, or point OFFLOAD_NATS_URL at yours"));
  }
  const outcomes = await Promise.allSettled(waits);
  const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
  if (failed.length) throw failed.length === 1 ? failed[0]!.reason : new UnreachableError(failed.map((f) => (f.reason as Error).message).join("\n"));
}

async function waitFor(what: string, variable: string, endpoints: Endpoint[], waitSeconds: number, log: Logger, todo: string): Promise<void> {
  const where = endpoints.map((e) => e.label).join(", ");
  const result = await waitForEndpoints(endpoints, {
    waitSeconds,
    onWaiting: ({ elapsedSeconds, reason }) =>
      log.warn({ [what.toLowerCase()]: where, elapsedSeconds, waitSeconds }, `waiting for ${what} at ${where} (${variable}): ${reason}; giving up after ${waitSeconds} s`),
  });
  if (result.ok) return;
  throw new UnreachableError(`offload-api: cannot reach ${what} at ${where} (${variable}) within ${waitSeconds} s (OFFLOAD_START_WAIT_SECONDS): ${result.reason}; ${todo}`);
}
