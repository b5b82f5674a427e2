// Execution semantics, the run API's half: when and how often a run is
// dispatched. The test plays the worker (reads task messages, publishes
// events), so only the run API's own behaviour is under test.
import { randomUUID } from "node:crypto";
import { AckPolicy, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { ErrorBodySchema, Nats, RunSchema, TaskMessageSchema } from "@offload/sdk/internal";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServers, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";
import { call, NatsProbe, startApiProcess, type ApiProcess } from "../api/helpers.js";

const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;
/** When JetStream stored a message, in ms since the epoch (the publish time, by the server's clock: the same machine's). */
// (`timestampNanos` is typed bigint but may arrive as a number: normalise it.)
const storedAt = (m: JsMsg): number => Number(BigInt(m.info.timestampNanos) / 1_000_000n);
// How late a due run may be dispatched: the sweeper runs every 250 ms; the rest is slack for a loaded 2-core machine.
const DISPATCH_TOLERANCE_MS = 1500;

describe("run API dispatch semantics", () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  let env: Record<string, string>;
  let api: ApiProcess;
  let probe: NatsProbe;

  beforeAll(async () => {
    ({ nats, postgres } = await startServers());
    env = { OFFLOAD_NATS_URL: nats.url, OFFLOAD_DATABASE_URL: await postgres.createDatabase(`sem_${randomUUID().slice(0, 8)}`) };
    api = await startApiProcess("offload-api", env);
    probe = await NatsProbe.connect(nats.url);
  });

  afterAll(async () => {
    await probe?.close().catch(() => undefined);
    await api?.stop();
    await Promise.all([nats?.stop(), postgres?.stop()]);
  });

  const getRun = async (id: string): Promise<ReturnType<typeof RunSchema.parse>> => RunSchema.parse((await call(api.url, "GET", `/v1/runs/${id}`)).body);
  const runIn = (id: string, state: string): Promise<ReturnType<typeof RunSchema.parse>> =>
    waitFor(`run ${id} to be ${state}`, async () => {
      const r = await getRun(id);
      return r.state === state ? r : undefined;
    });

  it("re-dispatches an AWAITING_RETRY run when its retryAt comes, not before, as a new message that counts the tries", async () => {
    const task = taskName("retry");
    const run = RunSchema.parse((await call(api.url, "POST", "/v1/runs", { task, parameters: { n: 1 }, timeoutSeconds: 7.5 })).body);
    const [first] = await probe.takeTaskMessages(task, 1);
    expect(TaskMessageSchema.parse(first!.json())).toEqual({ runId: run.id, task, parameters: { n: 1 }, attemptsBefore: 0, dispatch: 0, timeoutSeconds: 7.5 });

    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1 });
    // Far enough ahead that the run is still AWAITING_RETRY when read below, even on a loaded machine.
    const retryAt = new Date(Date.now() + 5000).toISOString();
    await probe.publishEvent({ runId: run.id, task, type: "AWAITING_RETRY", attempt: 1, retryAt, error: { type: "Error", message: "flaky" } });
    const waiting = await runIn(run.id, "AWAITING_RETRY");
    expect(waiting).toMatchObject({ attempts: 1, scheduledAt: retryAt, error: { type: "Error", message: "flaky" } });

    const [second] = await probe.takeTaskMessages(task, 1, 15_000);
    expect(second!.headers?.get("Nats-Msg-Id")).toBe(Nats.dispatchMsgId(run.id, 1));
    expect(TaskMessageSchema.parse(second!.json())).toEqual({ runId: run.id, task, parameters: { n: 1 }, attemptsBefore: 1, dispatch: 1, timeoutSeconds: 7.5 });
    const due = Date.parse(retryAt);
    expect(storedAt(second!)).toBeGreaterThanOrEqual(due);
    expect(storedAt(second!)).toBeLessThanOrEqual(due + DISPATCH_TOLERANCE_MS);
    expect((await getRun(run.id)).state).toBe("PENDING");

    // The second try, numbered after the first, completes it.
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 2 });
    await probe.publishEvent({ runId: run.id, task, type: "COMPLETED", attempt: 2, result: "ok" });
    expect(await runIn(run.id, "COMPLETED")).toMatchObject({ attempts: 2, result: "ok", error: null });
    expect(await probe.taskMessageCount(task)).toBe(0);
  });

  it("answers a new run PENDING before its task message is confirmed, then takes it out of the dispatch outbox so no sweep publishes it again", async () => {
    const task = taskName("outbox");
    const res = await call(api.url, "POST", "/v1/runs", { task });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ state: "PENDING" });
    expect((await getRun(res.body.id)).state).toBe("PENDING");
    const [msg] = await probe.takeTaskMessages(task, 1);
    expect(msg!.json()).toMatchObject({ runId: res.body.id, dispatch: 0 });
    const client = new pg.Client({ connectionString: env.OFFLOAD_DATABASE_URL });
    await client.connect();
    try {
      await waitFor("the run's outbox row to go", async () => {
        const { rows } = await client.query("SELECT 1 FROM dispatch_outbox WHERE run_id = $1", [res.body.id]);
        return rows.length === 0;
      });
    } finally {
      await client.end();
    }
  });

  it("leaves an AWAITING_RETRY without retryAt to the worker (no dispatch of its own)", async () => {
    const task = taskName("selfretry");
    const run = (await call(api.url, "POST", "/v1/runs", { task })).body;
    await probe.takeTaskMessages(task, 1);
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 1 });
    await probe.publishEvent({ runId: run.id, task, type: "AWAITING_RETRY", attempt: 1, error: { type: "Error", message: "x" } });
    await probe.eventsSettled();
    // Several sweeps' worth: nothing may be published for it.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await probe.taskMessageCount(task)).toBe(0);
    expect((await getRun(run.id)).state).toBe("AWAITING_RETRY");
  });

  it("dispatches a run scheduled 3 s ahead at its time, across an API restart", async () => {
    const task = taskName("sched");
    const scheduledAt = new Date(Date.now() + 3000).toISOString();
    const res = await call(api.url, "POST", "/v1/runs", { task, scheduledAt });
    expect(res.body).toMatchObject({ state: "SCHEDULED", scheduledAt });
    expect(await api.stop()).toBe(0);
    api = await startApiProcess("offload-api-restarted", env);
    // If the restart itself ran past the due time, the run can only be dispatched once the API is back.
    const upAgain = Date.now();
    const [msg] = await probe.takeTaskMessages(task, 1);
    const due = Date.parse(scheduledAt);
    expect(storedAt(msg!)).toBeGreaterThanOrEqual(due);
    expect(storedAt(msg!)).toBeLessThanOrEqual(Math.max(due, upAgain) + DISPATCH_TOLERANCE_MS);
    expect(TaskMessageSchema.parse(msg!.json())).toMatchObject({ runId: res.body.id, dispatch: 0, attemptsBefore: 0 });
    expect((await getRun(res.body.id)).state).toBe("PENDING");
  });

  it("fails a run whose message ran out of deliveries, and retries it by hand with the tries counting on", async () => {
    const task = taskName("maxdeliver");
    const durable = Nats.taskConsumer(task);
    // The shared task consumer, as a worker would make it, but giving up after two deliveries of one second each.
    await probe.jsm.consumers.add(Nats.tasksStream, {
      durable_name: durable,
      filter_subject: Nats.taskSubject(task),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(1000),
      max_deliver: 2,
    });
    const consumer = await probe.js.consumers.get(Nats.tasksStream, durable);
    const run = RunSchema.parse((await call(api.url, "POST", "/v1/runs", { task, parameters: [1] })).body);
    // Two workers take it in turn and die without an outcome (no ack).
    for (let attempt = 1; attempt <= 2; attempt++) {
      const m = await waitFor(`delivery ${attempt}`, () => consumer.next({ expires: 2000 }).then((x) => x ?? undefined), 10_000);
      expect(m.info.deliveryCount).toBe(attempt);
      await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt, workerId: `w${attempt}` });
    }
    // Asking again lets the server notice the delivery limit.
    await consumer.next({ expires: 2500 });
    const failed = await runIn(run.id, "FAILED");
    expect(failed.attempts).toBe(2);
    expect(failed.error?.type).toBe("MaxDeliveriesExceeded");
    expect(failed.error?.message).toMatch(/delivered 2 times .*without an outcome/);
    expect(failed.finishedAt).not.toBeNull();
    expect((await call(api.url, "GET", `/v1/runs?task=${task}&state=FAILED`)).body.runs.map((r: { id: string }) => r.id)).toEqual([run.id]);
    // The dead message is gone from the work queue.
    await waitFor("the dead message to be deleted", async () => (await probe.taskMessageCount(task)) === 0);
    await probe.jsm.consumers.delete(Nats.tasksStream, durable);

    const retried = await call(api.url, "POST", `/v1/runs/${run.id}/retry`);
    expect(retried.status).toBe(202);
    expect(RunSchema.parse(retried.body)).toMatchObject({ id: run.id, state: "PENDING", attempts: 2, error: null, finishedAt: null });
    const [again] = await probe.takeTaskMessages(task, 1);
    expect(again!.headers?.get("Nats-Msg-Id")).toBe(Nats.dispatchMsgId(run.id, 1));
    expect(TaskMessageSchema.parse(again!.json())).toEqual({ runId: run.id, task, parameters: [1], attemptsBefore: 2, dispatch: 1 });

    // A straggler of the failed dispatch changes nothing; the new try does.
    await probe.publishEvent({ runId: run.id, task, type: "FAILED", attempt: 2, error: { type: "Error", message: "stale" } });
    await probe.eventsSettled();
    expect((await getRun(run.id)).state).toBe("PENDING");
    await probe.publishEvent({ runId: run.id, task, type: "RUNNING", attempt: 3, workerId: "w3" });
    await probe.publishEvent({ runId: run.id, task, type: "COMPLETED", attempt: 3, workerId: "w3", result: 42 });
    expect(await runIn(run.id, "COMPLETED")).toMatchObject({ attempts: 3, result: 42, workerId: "w3" });

    const notFailed = await call(api.url, "POST", `/v1/runs/${run.id}/retry`);
    expect(notFailed.status).toBe(409);
    expect(ErrorBodySchema.parse(notFailed.body)).toMatchObject({ code: "OFFLOAD_RUN_NOT_RETRYABLE", runId: run.id });
    expect(notFailed.body.message).toContain("COMPLETED");
    expect((await call(api.url, "POST", `/v1/runs/${randomUUID()}/retry`)).body.code).toBe("OFFLOAD_RUN_NOT_FOUND");
  });
});
