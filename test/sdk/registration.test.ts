// A worker tells the run API what its tasks are: the real offload-worker bin
// (which runs serve()) on a module of tasks with flow options, against a real
// nats-server, with the test standing in for the run API's replicas on
// offload.register, so that it can answer late, refuse, and go away.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { z } from "zod";
import { serve, task } from "@offload/sdk";
import { Nats, TaskRegistrationSchema, type TaskRegistration } from "@offload/sdk/internal";
import { WORKER_BIN, freePort, startNats, startProcess, waitFor, type Child, type NatsServer } from "../support/index.js";

const FIXTURE = new URL("./fixtures/flow-tasks.mjs", import.meta.url).pathname;
const WARNING = "tasks not registered with the run API yet";

let nats: NatsServer;
let worker: Child | undefined;
let nc: NatsConnection | undefined;
const received: TaskRegistration[] = [];

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  await nc?.close().catch(() => undefined);
  await worker?.stop(5000);
  await nats?.stop();
});

const count = (text: string, part: string): number => text.split(part).length - 1;

describe("a worker registers its tasks with the run API", () => {
  test("it retries until a replica answers ok (one warning for the whole streak) and sends every definition", async () => {
    worker = startProcess("offload-worker", process.execPath, [WORKER_BIN, "--module", FIXTURE], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_WORKER_PORT: String(await freePort()),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
      OFFLOAD_LOG_LEVEL: "debug",
    });
    // Serving does not wait for the registration: the worker is ready while nobody answers it.
    await worker.waitForOutput("worker ready");
    await worker.waitForOutput(WARNING);
    // A second unanswered try, so that the streak has more than one failure.
    await worker.waitForOutput("task registration: still no answer");

    // The run API's replicas appear late; the first to be asked refuses once.
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    nc.subscribe(Nats.registerSubject, {
      callback: (err: Error | null, msg: Msg) => {
        if (err) return;
        const registration = TaskRegistrationSchema.parse(msg.json());
        received.push(registration);
        const reply = received.length === 1 ? { ok: false, error: "database busy" } : { ok: true, registered: registration.tasks.map((t) => t.name) };
        msg.respond(JSON.stringify(reply));
      },
    });
    await nc.flush();
    await worker.waitForOutput("tasks registered with the run API");
    expect(received.length).toBe(2);
    expect(count(worker.output(), WARNING)).toBe(1);

    const registration = received[1]!;
    expect(registration.workerId).toMatch(/\S/);
    const byName = new Map(registration.tasks.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(["plain", "sync-account"]);
    expect(byName.get("sync-account")).toEqual({
      name: "sync-account",
      description: "Syncs one account of a tenant",
      inputSchema: {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        type: "object",
        properties: {
          tenant: { type: "string", minLength: 1 },
          account: { type: "string" },
          // The input as callers send it: a field with a default may be left out.
          pages: expect.objectContaining({ type: "integer", minimum: 1, default: 1 }),
        },
        required: ["tenant", "account"],
      },
      concurrency: { limit: 2, keyed: true },
      rateLimit: { limit: 10, periodSeconds: 1, keyed: false },
      retries: 2,
      retryDelaySeconds: { exponential: { baseSeconds: 1, maxSeconds: 30 } },
      timeoutSeconds: 60,
    });
    expect(byName.get("plain")).toEqual({
      name: "plain",
      inputSchema: expect.objectContaining({ type: "object", required: ["n"] }),
      retries: 0,
      retryDelaySeconds: [1, 5],
    });
  });

  test("it registers again after NATS restarts", async () => {
    const before = received.length;
    const logged = count(worker!.output(), "tasks registered with the run API");
    await nats.restart();
    const again = await waitFor("a registration after the restart", () => received[before], 30_000);
    expect(again.tasks.map((t) => t.name).sort()).toEqual(["plain", "sync-account"]);
    await waitFor("the worker to log the new registration", () => count(worker!.output(), "tasks registered with the run API") > logged, 15_000);
  });

  // Were the registration awaited, serve() would never resolve here.
  test("serve() resolves ready while no run API answers, and stops cleanly meanwhile", async () => {
    await nc?.close();
    nc = undefined;
    const logged: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void logged.push(line) });
    const lonely = task({ name: "lonely", input: z.object({}), concurrency: { limit: 1 } }, async () => null);
    const server = await serve([lonely], { natsUrl: nats.url, logger, drainSeconds: 1 });
    expect(server.ready).toBe(true);
    await waitFor("the registration to fail", () => logged.some((l) => l.includes(WARNING)));
    await server.stop();
    await server.closed;
  });
});
