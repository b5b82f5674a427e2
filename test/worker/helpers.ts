import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Nats, RunEventBatchSchema, RunEventSchema, ensureStreams, type Json, type RunEvent } from "@offload/sdk/internal";
import { freePort, startProcess, waitFor, type Child } from "../support/index.js";

export const WORKER_BIN = fileURLToPath(new URL("../../worker/dist/bin/offload-worker.js", import.meta.url));
export const FIXTURE = fileURLToPath(new URL("./fixtures/tasks.mjs", import.meta.url));
export const NO_TASKS_FIXTURE = fileURLToPath(new URL("./fixtures/no-tasks.mjs", import.meta.url));

/** A spawned offload-worker and the port of its probes. */
export interface WorkerProcess {
  readonly child: Child;
  readonly port: number;
  get(path: string): Promise<Response>;
}

/** Spawns the built offload-worker bin on the fixture module and waits for "worker ready". */
export async function startWorker(natsUrl: string, args: string[] = [], env: Record<string, string> = {}, name = "worker"): Promise<WorkerProcess> {
  const port = await freePort();
  const child = startProcess(name, process.execPath, [WORKER_BIN, "--module", FIXTURE, ...args], {
    OFFLOAD_NATS_URL: natsUrl,
    OFFLOAD_WORKER_PORT: String(port),
    OFFLOAD_WORKER_HOST: "127.0.0.1",
    ...env,
  });
  await child.waitForOutput("worker ready");
  return { child, port, get: (path) => fetch(`http://127.0.0.1:${port}${path}`) };
}

/** A test's view of NATS: publishes task messages, records every run event. */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly events: RunEvent[];
  /** How many events each message on the events subjects carried (1 for an event sent alone, n for a batch of n). */
  readonly messageSizes: number[];
  /** Publishes a run of `task` (a new one, or another dispatch of `runId`); returns its id. */
  dispatch(task: string, parameters: Json, extra?: { attemptsBefore?: number; timeoutSeconds?: number; runId?: string; dispatch?: number }): Promise<string>;
  /** Publishes raw bytes on a task's subject. */
  publishRaw(task: string, data: string, msgID?: string): Promise<void>;
  eventsOf(runId: string): RunEvent[];
  /** Waits for the run's terminal (COMPLETED, FAILED or CANCELLED) event. */
  outcome(runId: string, timeoutMs?: number): Promise<RunEvent>;
  /** Waits for the run's `n`-th (1-based) event of `type`. */
  event(runId: string, type: RunEvent["type"], n?: number, timeoutMs?: number): Promise<RunEvent>;
  close(): Promise<void>;
}

export async function openBus(natsUrl: string): Promise<Bus> {
  const nc = await connect({ servers: natsUrl });
  await ensureStreams(await jetstreamManager(nc));
  const js = jetstream(nc);
  const events: RunEvent[] = [];
  const messageSizes: number[] = [];
  // A core subscription sees every event the workers publish to the stream, alone or in a batch; progress reports are left out.
  const sub = nc.subscribe(Nats.eventsWildcard, {
    callback: (err, msg) => {
      if (err) return;
      const data: unknown = msg.json();
      const entries = RunEventBatchSchema.safeParse(data).success ? (data as { events: unknown[] }).events : [data];
      messageSizes.push(entries.length);
      for (const e of entries) if ((e as { type?: unknown }).type !== "PROGRESS") events.push(RunEventSchema.parse(e));
    },
  });
  await nc.flush();
  const eventsOf = (runId: string): RunEvent[] => events.filter((e) => e.runId === runId);
  return {
    nc,
    js,
    events,
    messageSizes,
    async dispatch(task, parameters, extra = {}) {
      const runId = extra.runId ?? randomUUID();
      const dispatch = extra.dispatch ?? 0;
      const message = { runId, task, parameters, attemptsBefore: extra.attemptsBefore ?? 0, dispatch, ...(extra.timeoutSeconds ? { timeoutSeconds: extra.timeoutSeconds } : {}) };
      await js.publish(Nats.taskSubject(task), JSON.stringify(message), { msgID: Nats.dispatchMsgId(runId, dispatch) });
      nc.publish(Nats.nudgeSubject(task)); // as the run API does after publishing
      return runId;
    },
    async publishRaw(task, data, msgID) {
      await js.publish(Nats.taskSubject(task), data, msgID ? { msgID } : undefined);
      nc.publish(Nats.nudgeSubject(task));
    },
    eventsOf,
    outcome(runId, timeoutMs = 20_000) {
      return waitFor(`the outcome of run ${runId}`, () => eventsOf(runId).find((e) => e.type === "COMPLETED" || e.type === "FAILED" || e.type === "CANCELLED"), timeoutMs);
    },
    event(runId, type, n = 1, timeoutMs = 20_000) {
      return waitFor(`event #${n} ${type} of run ${runId}`, () => eventsOf(runId).filter((e) => e.type === type)[n - 1], timeoutMs);
    },
    async close() {
      sub.unsubscribe();
      await nc.close();
    },
  };
}
