import { afterAll, describe, expect, it } from "vitest";
import { freePort, killAll, startNats, type NatsServer } from "../support/index.js";
import { TASKS_FIXTURE, WORKER_BIN, occupyPort, run, start } from "./helpers.js";

// Loopback only: the worker's probes bind 127.0.0.1, where the test occupies ports.
const LOCAL = { OFFLOAD_WORKER_HOST: "127.0.0.1", OFFLOAD_LOG_LEVEL: "info" };

describe("offload-worker: start-up errors say what to do", () => {
  let nats: NatsServer | undefined;
  afterAll(async () => {
    await killAll();
    await nats?.stop();
  });

  it("a port given explicitly and in use: one line naming the port and its settings, exit 2, before any wait on NATS", async () => {
    const busy = await occupyPort();
    if (!busy) throw new Error("could not occupy a port");
    try {
      const { code, err } = await run("worker-port", WORKER_BIN, ["--module", TASKS_FIXTURE, "--port", String(busy.port)], {
        ...LOCAL,
        OFFLOAD_NATS_URL: "nats://127.0.0.1:1",
        OFFLOAD_START_WAIT_SECONDS: "600",
      });
      expect(code).toBe(2);
      expect(err).toContain(`offload-worker: port ${busy.port} (OFFLOAD_WORKER_PORT / --port) is in use by another process; pick another port, or 0 for any free port`);
    } finally {
      busy.server.close();
    }
  });

  it("the default port 8081 in use (a second worker beside npm run dev): the worker takes a free port and says which", async () => {
    // Held by this test, or already by someone else on the machine: either way taken.
    const held = await occupyPort(8081);
    try {
      const w = start("worker-default-port", WORKER_BIN, ["--module", TASKS_FIXTURE], {
        ...LOCAL,
        OFFLOAD_WORKER_PORT: "",
        OFFLOAD_NATS_URL: "nats://127.0.0.1:1",
        OFFLOAD_START_WAIT_SECONDS: "600",
      });
      await w.child.waitForOutput(/port 8081 is in use \(another worker\?\); \/healthz, \/readyz and \/metrics are on port \d+ instead/);
      const port = Number(/are on port (\d+) instead/.exec(w.child.output())![1]);
      expect(port).not.toBe(8081);
      // Alive while it waits for NATS (liveness passes), not ready (no traffic yet).
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
      await w.child.stop();
    } finally {
      held?.server.close();
    }
  });

  it("NATS unreachable: a progress line, then one line naming the URL (password masked) and OFFLOAD_NATS_URL, exit 1", async () => {
    const closed = await freePort();
    const url = `nats://offload:s3cret-pw@127.0.0.1:${closed}`;
    const { code, out, err } = await run("worker-no-nats", WORKER_BIN, ["--module", TASKS_FIXTURE, "--port", "0"], {
      ...LOCAL,
      OFFLOAD_NATS_URL: url,
      OFFLOAD_START_WAIT_SECONDS: "1",
    });
    expect(code).toBe(1);
    expect(out).toContain(`waiting for NATS at nats://offload:***@127.0.0.1:${closed} (OFFLOAD_NATS_URL): ECONNREFUSED`);
    expect(err.trim()).toBe(
      `offload-worker: cannot reach NATS at nats://offload:***@127.0.0.1:${closed} (OFFLOAD_NATS_URL / --nats-url) within 1 s (OFFLOAD_START_WAIT_SECONDS): ` +
        "ECONNREFUSED (connection refused: nothing listens there); start nats-server with JetStream (nats-server -js) there, or point OFFLOAD_NATS_URL at yours",
    );
    expect(out).not.toContain("s3cret-pw");
  });

  it("NATS that comes up within the wait: the worker waits for it, then serves", async () => {
    nats = await startNats();
    const n = nats;
    let worker: ReturnType<typeof start> | undefined;
    await n.restart(async () => {
      worker = start("worker-late-nats", WORKER_BIN, ["--module", TASKS_FIXTURE, "--port", "0"], {
        ...LOCAL,
        OFFLOAD_NATS_URL: n.url,
        OFFLOAD_START_WAIT_SECONDS: "120",
      });
      await worker.child.waitForOutput("waiting for NATS at");
    });
    await worker!.child.waitForOutput('"msg":"worker ready"', 30_000);
    expect(worker!.child.proc.exitCode).toBeNull();
    await worker!.child.stop();
  });
});
