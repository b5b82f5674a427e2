import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePort, waitFor } from "./ports.js";
import { startProcess, type Child } from "./process.js";

/** A real redis-server (Debian's) in a temporary folder on a free loopback port. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly child: Child;
  /** Stops the server (SIGTERM: it flushes its append-only file) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` (`REDIS_SERVER_BIN`, else the one on the PATH, as for nats-server) with
 * the settings BullMQ's docs ask for in production: an append-only file synced
 * every second (JetStream and our PostgreSQL do not fsync every write either),
 * no RDB snapshots, and `noeviction` (BullMQ loses jobs under any other policy).
 */
export async function startRedis(): Promise<RedisServer> {
  const bin = process.env.REDIS_SERVER_BIN || "redis-server";
  const dir = await mkdtemp(join(tmpdir(), "offload-redis-"));
  let port: number;
  let child: Child | undefined;
  try {
    port = await freePort();
    child = startProcess("redis-server", bin, [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--dir", dir,
      "--appendonly", "yes",
      "--appendfsync", "everysec",
      "--save", "",
      "--maxmemory-policy", "noeviction",
      "--daemonize", "no",
    ]);
    // The log line first: it fails at once if the server exits (a bad flag, a taken port).
    await child.waitForOutput("Ready to accept connections", 15_000);
    await waitFor(`redis-server on ${port}`, () => canConnect(port), 10_000);
  } catch (err) {
    // A failed start must not leave a server (or its folder) behind.
    await child?.stop(5000);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`could not start ${bin} (REDIS_SERVER_BIN overrides it): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    child,
    stop() {
      stopped ??= (async () => {
        await child.stop(5000);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
