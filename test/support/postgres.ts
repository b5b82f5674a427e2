import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.js";
import pg from "pg";

/** A throwaway PostgreSQL cluster (Debian's postgresql) on a free loopback port. */
export interface PostgresServer {
  readonly url: string;
  readonly port: number;
  /** A new, empty database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server's main process (its backends are its children), or undefined once stopped. */
  pid(): number | undefined;
  /**
   * `pg_ctl stop -m fast` (every backend is terminated, 57P01 to its client),
   * runs `whileDown`, then starts the same cluster again on the same port.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** The path of a PostgreSQL program: under PG_BIN_DIR, else in Debian's newest versioned folder, else on the PATH. */
export function pgBin(name: string): string {
  if (process.env.PG_BIN_DIR) return join(process.env.PG_BIN_DIR, name);
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, "bin", name))) return join(root, v, "bin", name);
  }
  return name;
}

// PostgreSQL refuses to run as root, and CI runs as root: run it as `postgres`.
const asRoot = process.getuid?.() === 0;
function run(cmd: string, args: string[]): void {
  if (asRoot) execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe" });
  else execFileSync(cmd, args, { stdio: "pipe" });
}

export async function startPostgres(): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), "offload-pg-"));
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  // pg_ctl runs the server detached: stop it explicitly, or it outlives the tests.
  const stopCluster = (): void => {
    try {
      run(pgBin("pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"]);
    } catch {
      // already gone (or never started)
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let port: number;
  let url: string;
  const startCluster = async (): Promise<void> => {
    run(pgBin("pg_ctl"), [
      "start", "-D", data, "-l", join(dir, "log"), "-w", "-t", "30",
      "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    ]);
    await waitFor("postgres to accept connections", async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.end();
      return true;
    });
  };
  try {
    run(pgBin("initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    // A free port can be taken by another test file's server between the probe and the bind: try another then.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      try {
        await startCluster();
        break;
      } catch (err) {
        const log = existsSync(join(dir, "log")) ? readFileSync(join(dir, "log"), "utf8") : "";
        if (attempt < 3 && /could not bind|already in use/i.test(log)) continue;
        throw new Error(`PostgreSQL did not start on port ${port}: ${(err as Error).message}\n${log.slice(-2000)}`, { cause: err });
      }
    }
  } catch (err) {
    // A failed start must not leave a server (or its folder) behind.
    stopCluster();
    throw err;
  }
  return {
    url,
    port,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, "")}"`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    pid() {
      try {
        return Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]) || undefined;
      } catch {
        return undefined;
      }
    },
    async restart(whileDown) {
      run(pgBin("pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w"]);
      try {
        await whileDown?.();
      } finally {
        await startCluster();
      }
    },
    async stop() {
      stopCluster();
    },
  };
}
