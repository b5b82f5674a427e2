import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { natsEndpoint, postgresEndpoint, waitForEndpoints } from "@offload/sdk/internal";
import { freePort } from "../support/index.js";

// Which address a process waits for at start, from the URL a user gives; a URL
// it cannot check over TCP (a Unix socket) must not make it wait and give up.
describe("start-up wait: the address each URL names", () => {
  it("NATS: nats://, tls:// and bare host:port, 4222 by default, IPv6, the password masked in what is shown", () => {
    expect(natsEndpoint("nats://nats.messaging.svc:4223")).toEqual({ host: "nats.messaging.svc", port: 4223, label: "nats://nats.messaging.svc:4223" });
    expect(natsEndpoint("tls://nats.example.com")).toMatchObject({ host: "nats.example.com", port: 4222 });
    expect(natsEndpoint("10.0.0.7:4222")).toMatchObject({ host: "10.0.0.7", port: 4222, label: "10.0.0.7:4222" });
    expect(natsEndpoint("nats://[::1]:5222")).toMatchObject({ host: "::1", port: 5222 });
    expect(natsEndpoint("nats://offload:pa55word@nats:4222")).toEqual({ host: "nats", port: 4222, label: "nats://offload:***@nats:4222" });
  });

  it("PostgreSQL: host and port (5432 by default), none for a Unix socket, the password masked", () => {
    expect(postgresEndpoint("postgres://offload:s3cret@db.internal:6432/offload")).toEqual({ host: "db.internal", port: 6432, label: "postgres://offload:***@db.internal:6432/offload" });
    expect(postgresEndpoint("postgresql://u@[::1]/db")).toMatchObject({ host: "::1", port: 5432 });
    expect(postgresEndpoint("postgres://u@/offload?host=/run/postgresql")).toBeUndefined();
    expect(postgresEndpoint("postgres:///offload")).toBeUndefined();
  });

  it("waits until one of several servers accepts, and says why none did when the wait is over", async () => {
    const closed = await freePort();
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const open = (server.address() as { port: number }).port;
    try {
      const up = await waitForEndpoints([natsEndpoint(`127.0.0.1:${closed}`)!, natsEndpoint(`127.0.0.1:${open}`)!], { waitSeconds: 0 });
      expect(up).toEqual({ ok: true });
      const down = await waitForEndpoints([natsEndpoint(`nats://127.0.0.1:${closed}`)!], { waitSeconds: 0 });
      expect(down).toEqual({ ok: false, reason: "ECONNREFUSED (connection refused: nothing listens there)" });
    } finally {
      server.close();
    }
  });
});
