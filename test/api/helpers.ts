import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Nats, type RunEvent } from "@offload/sdk/internal";
import { freePort, startProcess, waitFor, type Child } from "../support/index.js";

/** The built bin the tests run, exactly as the image does. */
export const API_BIN = new URL("../../operator/dist/bin/offload-api.js", import.meta.url).pathname;

/** A run API process started from the built bin. */
export interface ApiProcess {
  url: string;
  child: Child;
  stop(): Promise<number | string>;
}

/** Starts `offload-api` with `env` on a free port and waits until it says it is ready. */
export async function startApiProcess(name: string, env: Record<string, string | undefined>): Promise<ApiProcess> {
  const port = await freePort();
  const child = startProcess(name, process.execPath, [API_BIN], {
    OFFLOAD_API_PORT: String(port),
    OFFLOAD_API_HOST: "127.0.0.1",
    OFFLOAD_LOG_LEVEL: "info",
    ...env,
  });
  await child.waitForOutput("offload-api ready", 30_000);
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.stop(10_000) };
}

/** A temporary folder, removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A JSON call to the API; answers the status, parsed body and headers. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // Tests poke at whatever came back, error bodies and runs alike; the assertions are the type check.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** A NATS connection for a test to look at the streams and publish events like a worker. */
export class NatsProbe {
  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
  ) {}

  static async connect(url: string): Promise<NatsProbe> {
    const nc = await connect({ servers: url });
    return new NatsProbe(nc, await jetstreamManager(nc));
  }

  /** How many messages the tasks stream holds on `offload.tasks.<task>`. */
  async taskMessageCount(task: string): Promise<number> {
    const subject = Nats.taskSubject(task);
    const info = await this.jsm.streams.info(Nats.tasksStream, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  }

  /** Reads (and acks) every message on `offload.tasks.<task>` with a durable consumer of its own, as a worker would. */
  async takeTaskMessages(task: string, expect: number): Promise<JsMsg[]> {
    const durable = `test-${task}`;
    await this.jsm.consumers.add(Nats.tasksStream, { durable_name: durable, filter_subject: Nats.taskSubject(task), ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(this.nc).consumers.get(Nats.tasksStream, durable);
    const got: JsMsg[] = [];
    try {
      for (;;) {
        // Wait for the expected ones, then briefly for any extra (which would be a bug).
        const missing = expect - got.length;
        const batch = await consumer.fetch(missing > 0 ? { max_messages: missing, expires: 5000 } : { max_messages: 1000, expires: 1000 });
        let n = 0;
        for await (const m of batch) {
          got.push(m);
          m.ack();
          n++;
        }
        if (n === 0 && got.length >= expect) break;
        if (n === 0 && missing > 0) break;
      }
    } finally {
      await this.jsm.consumers.delete(Nats.tasksStream, durable);
    }
    return got;
  }

  /** Publishes a run event like a worker does. */
  async publishEvent(event: Partial<RunEvent> & Pick<RunEvent, "runId" | "task" | "type">): Promise<void> {
    const full: RunEvent = { attempt: 1, workerId: "test-worker", at: new Date().toISOString(), ...event };
    await jetstream(this.nc).publish(Nats.eventSubject(event.task), JSON.stringify(full));
  }

  /** Publishes raw bytes on a task's event subject. */
  async publishRawEvent(task: string, data: string): Promise<void> {
    await jetstream(this.nc).publish(Nats.eventSubject(task), data);
  }

  /** Waits until the API's events consumer has handled (acked or terminated) every event published so far. */
  async eventsSettled(): Promise<void> {
    await waitFor("the API to handle every event", async () => {
      const info = await this.jsm.consumers.info(Nats.eventsStream, Nats.eventsConsumer);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
