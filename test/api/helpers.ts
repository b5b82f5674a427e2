import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Nats, type Heartbeat, type RunEvent, type RunLogLine } from "@offload/sdk/internal";
import { afterAll, beforeAll } from "vitest";
import { freePort, startProcess, startServers, waitFor, type Child, type NatsServer, type PostgresServer } from "../support/index.js";

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
  try {
    await child.waitForOutput("offload-api ready", 30_000);
  } catch (err) {
    // Not ready (or exited): the caller never gets a handle to stop it, so it is stopped here.
    await child.stop(10_000).catch(() => undefined);
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.stop(10_000) };
}

/** What {@link useApiProcess} started for a test file. */
export interface ApiFixture {
  readonly nats: NatsServer;
  readonly postgres: PostgresServer;
  readonly api: ApiProcess;
  /** A NATS connection playing the worker. */
  readonly probe: NatsProbe;
}

/**
 * A real nats-server, PostgreSQL (one fresh database) and `offload-api` with
 * `env`, plus a {@link NatsProbe}: started before the file's tests, stopped
 * after them (on failure too). Read the parts inside tests and hooks.
 */
export function useApiProcess(env: Record<string, string> = {}): ApiFixture {
  let started: Partial<ApiFixture> = {};
  beforeAll(async () => {
    const { nats, postgres } = await startServers();
    started = { nats, postgres };
    const db = await postgres.createDatabase(`api_${randomUUID().slice(0, 8)}`);
    started = { ...started, api: await startApiProcess("offload-api", { OFFLOAD_NATS_URL: nats.url, OFFLOAD_DATABASE_URL: db, ...env }) };
    started = { ...started, probe: await NatsProbe.connect(nats.url) };
  });
  afterAll(async () => {
    const { probe, api, nats, postgres } = started;
    await probe?.close().catch(() => undefined);
    await api?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });
  const part = <K extends keyof ApiFixture>(k: K): ApiFixture[K] => {
    const v = started[k];
    if (!v) throw new Error(`the run API fixture has no ${k} (see beforeAll)`);
    return v as ApiFixture[K];
  };
  return {
    get nats() {
      return part("nats");
    },
    get postgres() {
      return part("postgres");
    },
    get api() {
      return part("api");
    },
    get probe() {
      return part("probe");
    },
  };
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

  /**
   * Reads (and acks) every message on `offload.tasks.<task>` with a durable consumer of its own, as a worker would.
   * Waits up to `waitMs` at a time for the expected ones to arrive.
   */
  async takeTaskMessages(task: string, expect: number, waitMs = 5000): Promise<JsMsg[]> {
    const durable = `test-${task}`;
    await this.jsm.consumers.add(Nats.tasksStream, { durable_name: durable, filter_subject: Nats.taskSubject(task), ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(this.nc).consumers.get(Nats.tasksStream, durable);
    const got: JsMsg[] = [];
    try {
      for (;;) {
        // Wait for the expected ones, then briefly for any extra (which would be a bug).
        const missing = expect - got.length;
        const batch = await consumer.fetch(missing > 0 ? { max_messages: missing, expires: waitMs } : { max_messages: 1000, expires: 1000 });
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

  get js(): JetStreamClient {
    return jetstream(this.nc);
  }

  /** The value the API wrote for `runId` in the cancellations bucket, or undefined. */
  async cancellation(runId: string): Promise<string | undefined> {
    const kv = await new Kvm(this.nc).open(Nats.cancelBucket);
    const e = await kv.get(runId);
    return e && e.operation === "PUT" ? e.string() : undefined;
  }

  /** Puts a result in the results store as a worker does (the result's JSON text, under the run id). */
  async putResult(runId: string, result: unknown): Promise<void> {
    const os = await new Objm(this.nc).open(Nats.resultsBucket);
    await os.putBlob({ name: runId }, new TextEncoder().encode(JSON.stringify(result)));
  }

  /** Whether the results store holds anything under `key`: the object, or the metadata a deleted one leaves behind. */
  async hasStoredResult(key: string): Promise<boolean> {
    const os = await new Objm(this.nc).open(Nats.resultsBucket);
    return (await os.info(key)) !== null;
  }

  /** Publishes log lines of a run as a worker does, in order. */
  async publishLogs(runId: string, lines: RunLogLine[]): Promise<void> {
    const js = jetstream(this.nc);
    // In parallel, but each publish is acked: the order of the stream is the order sent on one connection.
    await Promise.all(lines.map((l) => js.publish(Nats.logSubject(runId), JSON.stringify(l))));
  }

  /** Announces a worker like its heartbeat does. */
  async heartbeat(hb: Heartbeat): Promise<void> {
    this.nc.publish(Nats.heartbeatSubject(hb.task), JSON.stringify(hb));
    await this.nc.flush();
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

/** One server-sent event as a test sees it. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Reads a server-sent event stream until the server ends it (or `signal`
 * aborts); `onEvent` sees each event as it arrives.
 */
export async function readSse(url: string, onEvent: (e: SseEvent) => void | Promise<void>, signal?: AbortSignal): Promise<{ status: number; contentType: string | null; events: SseEvent[] }> {
  const res = await fetch(url, { signal });
  const events: SseEvent[] = [];
  if (!res.body) return { status: res.status, contentType: res.headers.get("content-type"), events };
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const fields = block.split("\n").filter((l) => l && !l.startsWith(":"));
      const event = fields.find((l) => l.startsWith("event: "))?.slice(7);
      const data = fields.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (event === undefined) continue;
      const e = { event, data };
      events.push(e);
      await onEvent(e);
    }
  }
  return { status: res.status, contentType: res.headers.get("content-type"), events };
}
