import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, killAll, startServers, type NatsServer, type PostgresServer } from "../support/index.js";
import { API_BIN, occupyPort, run, start, tempDir } from "./helpers.js";

const LOCAL = { OFFLOAD_API_HOST: "127.0.0.1", OFFLOAD_DATABASE_URL: "", OFFLOAD_API_TOKEN: "" };

describe("offload-api: start-up errors say what to do", () => {
  let servers: { nats: NatsServer; postgres: PostgresServer } | undefined;
  afterAll(async () => {
    await killAll();
    await Promise.all([servers?.nats.stop(), servers?.postgres.stop()]);
  });

  it("the port in use: one line naming it and OFFLOAD_API_PORT, exit 2, before any wait on NATS", async () => {
    const busy = await occupyPort();
    if (!busy) throw new Error("could not occupy a port");
    try {
      const { code, err } = await run("api-port", API_BIN, [], {
        ...LOCAL,
        OFFLOAD_API_PORT: String(busy.port),
        OFFLOAD_NATS_URL: "nats://127.0.0.1:1",
        OFFLOAD_START_WAIT_SECONDS: "600",
      });
      expect(code).toBe(2);
      expect(err.trim()).toBe(`offload-api: port ${busy.port} (OFFLOAD_API_PORT) is in use by another process; pick another port, or 0 for any free port`);
    } finally {
      busy.server.close();
    }
  });

  it("a data folder that cannot be created: one line naming the folder, OFFLOAD_DATA_DIR and OFFLOAD_DATABASE_URL, exit 2", async () => {
    // Root (as CI runs) ignores permission bits, so the folder is put under a regular file: mkdir fails with ENOTDIR for root too.
    const tmp = await tempDir("offload-startup-");
    try {
      const file = join(tmp.path, "a-file");
      await writeFile(file, "not a folder\n");
      const dataDir = join(file, "data");
      const { code, err, out } = await run("api-data-dir", API_BIN, [], {
        ...LOCAL,
        OFFLOAD_API_PORT: "0",
        OFFLOAD_DATA_DIR: dataDir,
        OFFLOAD_NATS_URL: "nats://127.0.0.1:1",
        OFFLOAD_START_WAIT_SECONDS: "600",
      });
      expect(code).toBe(2);
      expect(err.trim()).toBe(
        `offload-api: cannot create or write the data folder ${dataDir} (OFFLOAD_DATA_DIR): ENOTDIR (a part of the path is a file, not a folder); ` +
          "set OFFLOAD_DATA_DIR to a writable folder (e.g. a mounted volume), or OFFLOAD_DATABASE_URL to use PostgreSQL instead",
      );
      // The same message in the structured log, for whoever reads the pod's logs.
      expect(out).toMatch(/"level":60,.*"msg":"offload-api: cannot create or write the data folder/);
    } finally {
      await tmp.remove();
    }
  });

  it("PostgreSQL and NATS unreachable: progress lines, then a line for each naming the URL (password masked) and its variable, exit 1", async () => {
    const [pgPort, natsPort] = [await freePort(), await freePort()];
    const { code, err, out } = await run("api-no-deps", API_BIN, [], {
      ...LOCAL,
      OFFLOAD_API_PORT: "0",
      OFFLOAD_DATABASE_URL: `postgres://offload:hunter2-pw@127.0.0.1:${pgPort}/offload`,
      OFFLOAD_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      OFFLOAD_START_WAIT_SECONDS: "1",
    });
    expect(code).toBe(1);
    expect(out).toContain(`waiting for PostgreSQL at postgres://offload:***@127.0.0.1:${pgPort}/offload (OFFLOAD_DATABASE_URL): ECONNREFUSED`);
    expect(out).toContain(`waiting for NATS at nats://127.0.0.1:${natsPort} (OFFLOAD_NATS_URL): ECONNREFUSED`);
    expect(err.trim().split("\n")).toEqual([
      `offload-api: cannot reach PostgreSQL at postgres://offload:***@127.0.0.1:${pgPort}/offload (OFFLOAD_DATABASE_URL) within 1 s (OFFLOAD_START_WAIT_SECONDS): ` +
        "ECONNREFUSED (connection refused: nothing listens there); start PostgreSQL there, or correct the URL",
      `offload-api: cannot reach NATS at nats://127.0.0.1:${natsPort} (OFFLOAD_NATS_URL) within 1 s (OFFLOAD_START_WAIT_SECONDS): ` +
        "ECONNREFUSED (connection refused: nothing listens there); start nats-server with JetStream (nats-server -js) there, or point OFFLOAD_NATS_URL at yours",
    ]);
    expect(out).not.toContain("hunter2-pw");
  });

  it("NATS that comes up within the wait (a pod started before it): the API waits, then serves", async () => {
    servers = await startServers();
    const { nats, postgres } = servers;
    let api: ReturnType<typeof start> | undefined;
    await nats.restart(async () => {
      api = start("api-late-nats", API_BIN, [], {
        ...LOCAL,
        OFFLOAD_API_PORT: "0",
        OFFLOAD_DATABASE_URL: postgres.url,
        OFFLOAD_NATS_URL: nats.url,
        OFFLOAD_START_WAIT_SECONDS: "120",
      });
      await api.child.waitForOutput("waiting for NATS at");
    });
    await api!.child.waitForOutput('"msg":"offload-api ready"', 60_000);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(api!.child.output())![1];
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await api!.child.stop();
  });

  it("--help says what the exit codes mean and names OFFLOAD_START_WAIT_SECONDS", async () => {
    const { code, out } = await run("api-help", API_BIN, ["--help"], {});
    expect(code).toBe(0);
    expect(out).toContain("OFFLOAD_START_WAIT_SECONDS");
    expect(out).toMatch(/Exit codes: 0 .*; 1 when PostgreSQL or\s+NATS did not accept connections/s);
  });
});
