// Execution semantics, the run API's half: cancelling, caching, large
// results, logs, the task list, live events and metrics. The test plays the
// worker (publishes events, results, log lines and heartbeats).
import { randomUUID } from "node:crypto";
import { AckPolicy } from "@nats-io/jetstream";
import {
  CancellationSchema,
  ErrorBodySchema,
  ListTasksResponseSchema,
  MAX_LOG_LINES_PER_RUN,
  Nats,
  RunLogsResponseSchema,
  RunSchema,
  type Run,
  type RunLogLine,
} from "@offload/sdk/internal";
import { describe, expect, it } from "vitest";
import { waitFor } from "../support/index.js";
import { call, readSse, useApiProcess } from "../api/helpers.js";

const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;

describe("run API: cancel, cache, results, logs, tasks, events", () => {
  const t = useApiProcess();

  const post = async (body: object): Promise<Run> => RunSchema.parse((await call(t.api.url, "POST", "/v1/runs", body)).body);
  const getRun = async (id: string): Promise<Run> => RunSchema.parse((await call(t.api.url, "GET", `/v1/runs/${id}`)).body);
  const runIn = (id: string, state: string): Promise<Run> =>
    waitFor(`run ${id} to be ${state}`, async () => {
      const r = await getRun(id);
      return r.state === state ? r : undefined;
    });

  describe("cancel", () => {
    it("cancels a run no worker has started at once, and tells workers through the bucket", async () => {
      const task = taskName("cancel-early");
      const run = await post({ task });
      expect(run.state).toBe("PENDING");
      const res = await call(t.api.url, "POST", `/v1/runs/${run.id}/cancel`);
      expect(res.status).toBe(200);
      const cancelled = RunSchema.parse(res.body);
      expect(cancelled).toMatchObject({ id: run.id, state: "CANCELLED" });
      expect(cancelled.finishedAt).not.toBeNull();
      expect(CancellationSchema.parse(JSON.parse((await t.probe.cancellation(run.id))!))).toBeDefined();
      // A worker that started it anyway cannot bring it back; cancelling again is no error.
      await t.probe.publishEvent({ runId: run.id, task, type: "RUNNING" });
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", result: 1 });
      await t.probe.eventsSettled();
      expect((await getRun(run.id)).state).toBe("CANCELLED");
      const twice = await call(t.api.url, "POST", `/v1/runs/${run.id}/cancel`);
      expect(twice.status).toBe(200);
      expect(twice.body.state).toBe("CANCELLED");
    });

    it("cancels a scheduled run, which is then never dispatched", async () => {
      const task = taskName("cancel-sched");
      // Due far enough ahead that the cancel surely comes first; then wait until well past due.
      const due = Date.now() + 3000;
      const run = await post({ task, scheduledAt: new Date(due).toISOString() });
      expect((await call(t.api.url, "POST", `/v1/runs/${run.id}/cancel`)).body.state).toBe("CANCELLED");
      await new Promise((r) => setTimeout(r, Math.max(0, due + 1200 - Date.now())));
      expect(await t.probe.taskMessageCount(task)).toBe(0);
      expect((await getRun(run.id)).state).toBe("CANCELLED");
    });

    it("asks the worker of a RUNNING run to stop (202), and the worker's CANCELLED ends it", async () => {
      const task = taskName("cancel-running");
      const run = await post({ task });
      await t.probe.publishEvent({ runId: run.id, task, type: "RUNNING" });
      await runIn(run.id, "RUNNING");
      const res = await call(t.api.url, "POST", `/v1/runs/${run.id}/cancel`);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ id: run.id, state: "RUNNING" });
      expect(await t.probe.cancellation(run.id)).toBeDefined();
      await t.probe.publishEvent({ runId: run.id, task, type: "CANCELLED" });
      const done = await runIn(run.id, "CANCELLED");
      expect(done.finishedAt).not.toBeNull();
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", result: "late" });
      await t.probe.eventsSettled();
      expect((await getRun(run.id)).state).toBe("CANCELLED");
      expect((await call(t.api.url, "GET", `/v1/runs/${run.id}/result`)).body.code).toBe("OFFLOAD_RUN_CANCELLED");
    });

    it("refuses to cancel a finished run (409) and an unknown one (404)", async () => {
      const task = taskName("cancel-late");
      const run = await post({ task });
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", result: "done" });
      await runIn(run.id, "COMPLETED");
      const res = await call(t.api.url, "POST", `/v1/runs/${run.id}/cancel`);
      expect(res.status).toBe(409);
      expect(ErrorBodySchema.parse(res.body)).toMatchObject({ code: "OFFLOAD_RUN_FINISHED", statusCode: 409, runId: run.id });
      expect(res.body.message).toContain("COMPLETED");
      expect(await t.probe.cancellation(run.id)).toBeUndefined();
      expect((await getRun(run.id)).state).toBe("COMPLETED");
      for (const id of [randomUUID(), "nope"]) {
        const missing = await call(t.api.url, "POST", `/v1/runs/${id}/cancel`);
        expect(missing.status).toBe(404);
        expect(ErrorBodySchema.parse(missing.body).code).toBe("OFFLOAD_RUN_NOT_FOUND");
      }
    });
  });

  describe("cache", () => {
    it("serves a second run with the same cacheKey from the first's result, without dispatching it", async () => {
      const task = taskName("cache");
      const cacheKey = `k-${randomUUID()}`;
      const first = await post({ task, parameters: { x: 1 }, cacheKey });
      expect(first).toMatchObject({ state: "PENDING", cacheKey, cached: false });
      await t.probe.publishEvent({ runId: first.id, task, type: "COMPLETED", result: { answer: 42 } });
      await runIn(first.id, "COMPLETED");

      const res = await call(t.api.url, "POST", "/v1/runs", { task, parameters: { x: 1 }, cacheKey });
      expect(res.status).toBe(202);
      const second = RunSchema.parse(res.body);
      expect(second.id).not.toBe(first.id);
      expect(second).toMatchObject({ state: "COMPLETED", cached: true, cacheKey, result: { answer: 42 }, attempts: 0 });
      expect(second.finishedAt).not.toBeNull();
      expect((await call(t.api.url, "GET", `/v1/runs/${second.id}/result`)).body).toEqual({
        id: second.id,
        state: "COMPLETED",
        done: true,
        result: { answer: 42 },
        cached: true,
      });
      // Only the first run was ever dispatched.
      expect(await t.probe.taskMessageCount(task)).toBe(1);

      // The same in a batch; another task's identical key is no hit.
      const batch = await call(t.api.url, "POST", "/v1/runs/batch", {
        runs: [{ task, cacheKey }, { task, cacheKey: `${cacheKey}-other` }, { task: taskName("cache-other"), cacheKey }],
      });
      expect(batch.body.runs.map((r: Run) => [r.state, r.cached])).toEqual([
        ["COMPLETED", true],
        ["PENDING", false],
        ["PENDING", false],
      ]);
      expect(await t.probe.taskMessageCount(task)).toBe(2);
    });

    it("dispatches again once the cached result expired", async () => {
      const task = taskName("cache-exp");
      const cacheKey = `k-${randomUUID()}`;
      const first = await post({ task, cacheKey, cacheExpiresInSeconds: 3 });
      await t.probe.publishEvent({ runId: first.id, task, type: "COMPLETED", result: "old" });
      const done = await runIn(first.id, "COMPLETED");
      // Still fresh right after; expired three seconds after it finished.
      expect((await post({ task, cacheKey })).cached).toBe(true);
      await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(done.finishedAt!) + 3300 - Date.now())));
      const later = await post({ task, cacheKey });
      expect(later).toMatchObject({ state: "PENDING", cached: false });
      expect(await t.probe.taskMessageCount(task)).toBe(2);
    });
  });

  describe("large results", () => {
    it("answers a 5 MiB result from the results store", async () => {
      const task = taskName("big");
      const run = await post({ task });
      const result = { blob: "x".repeat(5 * 1024 * 1024), n: [1, 2, 3] };
      await t.probe.putResult(run.id, result);
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", resultRef: run.id });
      const done = await runIn(run.id, "COMPLETED");
      expect(done).toMatchObject({ result: null, resultRef: run.id });
      const res = await call(t.api.url, "GET", `/v1/runs/${run.id}/result`);
      expect(res.status).toBe(200);
      expect(res.body.done).toBe(true);
      expect(res.body.result.blob.length).toBe(5 * 1024 * 1024);
      expect(res.body.result).toEqual(result);
    });

    it("answers 410 when the stored result is gone", async () => {
      const task = taskName("gone");
      const run = await post({ task });
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", resultRef: `missing-${run.id}` });
      await runIn(run.id, "COMPLETED");
      const res = await call(t.api.url, "GET", `/v1/runs/${run.id}/result`);
      expect(res.status).toBe(410);
      expect(ErrorBodySchema.parse(res.body).code).toBe("OFFLOAD_RESULT_UNAVAILABLE");
    });
  });

  describe("logs", () => {
    const line = (msg: string, extra: Partial<RunLogLine> = {}): RunLogLine => ({ at: new Date().toISOString(), level: "info", msg, attempt: 1, ...extra });

    it("serves each run its own lines, oldest first", async () => {
      const task = taskName("logs");
      const [a, b, quiet] = [await post({ task }), await post({ task }), await post({ task })];
      await t.probe.publishLogs(a.id, [line("a1"), line("a2", { level: "warn", data: { k: 1 } }), line("a3", { attempt: 2 })]);
      await t.probe.publishLogs(b.id, [line("b1")]);
      const ra = await call(t.api.url, "GET", `/v1/runs/${a.id}/logs`);
      expect(ra.status).toBe(200);
      const la = RunLogsResponseSchema.parse(ra.body);
      expect(la.lines.map((l) => l.msg)).toEqual(["a1", "a2", "a3"]);
      expect(la.lines[1]).toMatchObject({ level: "warn", data: { k: 1 } });
      expect(la.truncated).toBe(false);
      expect((await call(t.api.url, "GET", `/v1/runs/${b.id}/logs`)).body.lines.map((l: RunLogLine) => l.msg)).toEqual(["b1"]);
      expect((await call(t.api.url, "GET", `/v1/runs/${quiet.id}/logs`)).body).toEqual({ lines: [], truncated: false });
      expect((await call(t.api.url, "GET", `/v1/runs/${randomUUID()}/logs`)).body.code).toBe("OFFLOAD_RUN_NOT_FOUND");
    });

    it("keeps the newest lines of a chatty run and says it dropped older ones", async () => {
      const run = await post({ task: taskName("chatty") });
      await t.probe.publishLogs(run.id, Array.from({ length: MAX_LOG_LINES_PER_RUN + 5 }, (_, i) => line(`l${i}`)));
      const logs = RunLogsResponseSchema.parse((await call(t.api.url, "GET", `/v1/runs/${run.id}/logs`)).body);
      expect(logs.truncated).toBe(true);
      expect(logs.lines).toHaveLength(MAX_LOG_LINES_PER_RUN);
      expect(logs.lines[0]!.msg).toBe("l5");
      expect(logs.lines.at(-1)!.msg).toBe(`l${MAX_LOG_LINES_PER_RUN + 4}`);
    });
  });

  describe("tasks", () => {
    it("lists tasks with their backlog, in-flight runs and live workers", async () => {
      const idle = taskName("t-idle");
      const served = taskName("t-served");
      const consumed = taskName("t-consumed");
      for (let i = 0; i < 3; i++) await post({ task: idle });
      await t.probe.heartbeat({ workerId: "w-1", task: served, concurrency: 4, inFlight: 1, at: new Date().toISOString() });
      // A task whose shared consumer exists: its numbers come from JetStream.
      await t.probe.jsm.consumers.add(Nats.tasksStream, {
        durable_name: Nats.taskConsumer(consumed),
        filter_subject: Nats.taskSubject(consumed),
        ack_policy: AckPolicy.Explicit,
      });
      try {
        for (let i = 0; i < 2; i++) await post({ task: consumed });
        const consumer = await t.probe.js.consumers.get(Nats.tasksStream, Nats.taskConsumer(consumed));
        expect(await consumer.next({ expires: 5000 })).not.toBeNull();

        const list = await waitFor("the heartbeat to be heard", async () => {
          const res = await call(t.api.url, "GET", "/v1/tasks");
          const body = ListTasksResponseSchema.parse(res.body);
          return body.tasks.some((t) => t.name === served) ? body : undefined;
        });
        const byName = new Map(list.tasks.map((t) => [t.name, t]));
        expect(byName.get(idle)).toEqual({ name: idle, backlog: 3, inFlight: 0, workers: [] });
        expect(byName.get(served)).toMatchObject({ backlog: 0, inFlight: 0, workers: [{ workerId: "w-1", concurrency: 4, inFlight: 1 }] });
        expect(byName.get(consumed)).toEqual({ name: consumed, backlog: 1, inFlight: 1, workers: [] });
      } finally {
        await t.probe.jsm.consumers.delete(Nats.tasksStream, Nats.taskConsumer(consumed));
      }
    });
  });

  describe("events", () => {
    it("streams a run's states as server-sent events, ending after the terminal one", async () => {
      const task = taskName("sse");
      const run = await post({ task });
      const states: string[] = [];
      const stream = readSse(`${t.api.url}/v1/runs/${run.id}/events`, async (e) => {
        const r = RunSchema.parse(JSON.parse(e.data));
        states.push(r.state);
        // Play the worker once the stream has shown where the run stands.
        if (r.state === "PENDING") await t.probe.publishEvent({ runId: run.id, task, type: "RUNNING" });
      });
      // COMPLETED only once the stream showed RUNNING, so each change is its own event.
      await waitFor("RUNNING on the stream", () => states.includes("RUNNING"), 20_000);
      await t.probe.publishEvent({ runId: run.id, task, type: "COMPLETED", result: "fin" });
      const out = await stream;
      expect(out.status).toBe(200);
      expect(out.contentType).toMatch(/^text\/event-stream/);
      expect(out.events.every((e) => e.event === "state")).toBe(true);
      expect(states).toEqual(["PENDING", "RUNNING", "COMPLETED"]);
      expect(JSON.parse(out.events.at(-1)!.data)).toMatchObject({ state: "COMPLETED", result: "fin" });

      // A finished run: its state, then the end.
      const again = await readSse(`${t.api.url}/v1/runs/${run.id}/events`, () => undefined);
      expect(again.events.map((e) => JSON.parse(e.data).state)).toEqual(["COMPLETED"]);
      const missing = await call(t.api.url, "GET", `/v1/runs/${randomUUID()}/events`);
      expect(missing.status).toBe(404);
      expect(ErrorBodySchema.parse(missing.body).code).toBe("OFFLOAD_RUN_NOT_FOUND");
    });
  });

  it("serves Prometheus metrics and documents every new endpoint", async () => {
    // Two runs of a task no worker serves: the backlog gauge an autoscaler reads says 2.
    const waiting = taskName("scale-me");
    await post({ task: waiting });
    await post({ task: waiting });
    const res = await fetch(`${t.api.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/offload_runs_created_total\{task="cache-[^"]+"\} \d+/);
    expect(text).toMatch(/offload_run_events_total\{type="COMPLETED",applied="true"\} \d+/);
    expect(text).toMatch(/offload_http_request_duration_seconds_count\{method="POST",route="\/v1\/runs",status="202"\} \d+/);
    expect(text).toContain(`offload_task_backlog{task="${waiting}"} 2`);
    expect(text).toContain(`offload_task_workers{task="${waiting}"} 0`);
    const doc = (await call(t.api.url, "GET", "/docs/json")).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/runs/{id}/cancel", "/v1/runs/{id}/retry", "/v1/runs/{id}/logs", "/v1/runs/{id}/events", "/v1/tasks"]),
    );
    expect(Object.keys(doc.paths["/v1/runs/{id}/events"].get.responses["200"].content)).toEqual(["text/event-stream"]);
  });

  // Last: it stops the API.
  it("ends open event streams at shutdown and still stops gracefully", async () => {
    const run = await post({ task: taskName("sse-stop") });
    let seen = 0;
    const stream = readSse(`${t.api.url}/v1/runs/${run.id}/events`, () => {
      seen++;
    });
    await waitFor("the first event", () => seen > 0, 10_000);
    expect(await t.api.stop()).toBe(0);
    const out = await stream;
    expect(out.events.map((e) => JSON.parse(e.data).state)).toEqual(["PENDING"]);
  });
});
