import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { connect } from "@nats-io/transport-node";
import { startServers, type NatsServer, type PostgresServer } from "../support/index.js";

// The harness itself: if these fail, every system test would fail for the wrong reason.
describe("test harness", () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  beforeAll(async () => {
    ({ nats, postgres } = await startServers());
  });
  afterAll(async () => {
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  it("starts a nats-server with JetStream", async () => {
    const nc = await connect({ servers: nats.url });
    const info = nc.info;
    expect(info?.jetstream).toBe(true);
    await nc.close();
  });

  it("starts a PostgreSQL that makes fresh databases", async () => {
    const url = await postgres.createDatabase("harness_check");
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const r = await c.query<{ v: string }>("select current_database() as v");
    expect(r.rows[0]?.v).toBe("harness_check");
    await c.end();
  });
});
