// Execution semantics, the worker's half: retries, timeouts, cancellation,
// large results, run logs, task hooks and max deliveries. A real nats-server;
// serve() runs in this process, and the test plays the run API: it publishes
// task messages (and the retry dispatches the API would send), writes the
// cancellations bucket and reads the events, the results store and the logs.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { NonRetryableError, RetryAfterError, serve, task, type Server, type TaskRunInfo } from "@offload/sdk";
import { MAX_LOG_LINES_PER_RUN, Nats, RunLogLineSchema, type RunEvent, type RunLogLine } from "@offload/sdk/internal";
import { killAll, startNats, waitFor, type NatsServer } from "../support/index.js";
import { openBus, startWorker, type Bus, type WorkerProcess } from "../worker/helpers.js";

class FlakyError extends Error {
  override name = "FlakyError";
}
class HttpError extends Error {}
class NotFoundError extends HttpError {
  override name = "NotFoundError";
}

const hookCalls: { hook: "onCompletion" | "onFailure"; run: TaskRunInfo; value: unknown; at: number }[] = [];
const calls = new Map<string, number>();
const count = (runId: string): void => void calls.set(runId, (calls.get(runId) ?? 0) + 1);
const signals = new Map<string, { aborted: boolean; reason: string | undefined; finished: boolean }>();

const flaky = task(
  {
    name: "w-flaky",
    input: z.object({ failTimes: z.number().int() }),
    retries: 2,
    retryDelaySeconds: [1, 3],
    onCompletion: (run, value) => void hookCalls.push({ hook: "onCompletion", run, value, at: Date.now() }),
    onFailure: (run, error) => void hookCalls.push({ hook: "onFailure", run, value: error, at: Date.now() }),
  },
  async ({ failTimes }: { failTimes: number }, ctx) => {
    if (ctx.attempt <= failTimes) throw new FlakyError(`try ${ctx.attempt} failed`);
    return { attempt: ctx.attempt };
  },
);
const fatal = task({ name: "w-fatal", input: z.object({}), retries: 3 }, async () => {
  throw new NonRetryableError("the input can never work");
});
const throttled = task({ name: "w-throttled", input: z.object({}), retries: 1, retryDelaySeconds: 1 }, async () => {
  throw new RetryAfterError("rate limited", 7);
});
const picky = task({ name: "w-picky", input: z.object({ kind: z.enum(["http", "type"]) }), retries: 2, retryOn: ["HttpError"] }, async ({ kind }) => {
  throw kind === "http" ? new NotFoundError("gone") : new TypeError("a bug");
});
// Ignores its signal and outlives its timeout.
const stubborn = task({ name: "w-stubborn", input: z.object({}), timeoutSeconds: 0.3, retries: 1 }, async (_input, ctx) => {
  const s = { aborted: false, reason: undefined as string | undefined, finished: false };
  signals.set(`${ctx.runId}:${ctx.attempt}`, s);
  // Long enough to be still asleep after its run has failed and another run has completed.
  await sleep(8000);
  s.aborted = ctx.signal.aborted;
  s.finished = true;
  return "too late";
});
const add = task({ name: "w-add", input: z.object({ a: z.number(), b: z.number() }) }, ({ a, b }, ctx) => {
  count(ctx.runId);
  return a + b;
});
// Waits for its signal (or, with ignore, sleeps through it).
const waiter = task({ name: "w-wait", input: z.object({ ignore: z.boolean().default(false) }) }, async ({ ignore }, ctx) => {
  count(ctx.runId);
  const s = { aborted: false, reason: undefined as string | undefined, finished: false };
  signals.set(ctx.runId, s);
  if (ignore) await sleep(8000);
  else await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
  s.aborted = ctx.signal.aborted;
  s.reason = (ctx.signal.reason as Error | undefined)?.name;
  s.finished = true;
  return "done";
});
const big = task({ name: "w-big", input: z.object({ chars: z.number().int() }) }, ({ chars }) => ({ text: "x".repeat(chars) }));
const chatty = task({ name: "w-chatty", input: z.object({ tag: z.string() }) }, async ({ tag }, ctx) => {
  ctx.log.info({ step: 1, tag }, "hello %s", tag);
  ctx.log.debug("not kept: below the run log level");
  ctx.log.warn("careful");
  ctx.log.child({ part: "inner" }).error(new Error(`bad ${tag}`));
  return tag;
});
const hookThrows = task(
  {
    name: "w-hook-throws",
    input: z.object({}),
    onCompletion: () => {
      throw new Error("hook trouble");
    },
  },
  () => "fine",
);

describe("worker: execution semantics", () => {
  let nats: NatsServer;
  let bus: Bus;
  let server: Server;
  let jsm: JetStreamManager;
  let cancellations: KV;
  const logged: string[] = [];
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    nats = await startNats();
    bus = await openBus(nats.url);
    const logger = pino({ level: "info" }, { write: (line: string) => void logged.push(line) });
    server = await serve([flaky, fatal, throttled, picky, stubborn, add, waiter, big, chatty, hookThrows], {
      natsUrl: nats.url,
      concurrency: 2,
      logger,
      drainSeconds: 2,
      resultInlineLimitBytes: 1024,
    });
    jsm = await jetstreamManager(bus.nc);
    cancellations = await new Kvm(bus.js).open(Nats.cancelBucket);
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.child.stop(5000)));
    await server?.stop();
    await bus?.close();
    await nats?.stop();
    await killAll();
  });

  const delayOf = (e: RunEvent): number => Date.parse(e.retryAt!) - Date.parse(e.at);
  const settled = (taskName: string): Promise<unknown> =>
    waitFor(`the ${taskName} consumer to have nothing pending or unacked`, async () => {
      const info = await jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer(taskName));
      return info.num_pending === 0 && info.num_ack_pending === 0;
    });

  describe("retries", () => {
    it("a failed try with retries left is AWAITING_RETRY with its error and the delay of that try, and its message is acked", async () => {
      const runId = await bus.dispatch("w-flaky", { failTimes: 2 });
      const first = await bus.event(runId, "AWAITING_RETRY");
      expect(first).toMatchObject({ attempt: 1, error: { type: "FlakyError", message: "try 1 failed" } });
      expect(delayOf(first)).toBeGreaterThanOrEqual(1000);
      expect(delayOf(first)).toBeLessThan(1100);
      // The dispatcher, not a sleeping worker, keeps the delay: nothing of the run is left with the worker.
      await settled("w-flaky");
      // The test plays the dispatcher: the next dispatch of the same run counts the tries before it.
      await bus.dispatch("w-flaky", { failTimes: 2 }, { runId, attemptsBefore: 1, dispatch: 1 });
      const second = await bus.event(runId, "AWAITING_RETRY", 2);
      expect(second).toMatchObject({ attempt: 2, error: { type: "FlakyError", message: "try 2 failed" } });
      expect(delayOf(second)).toBeGreaterThanOrEqual(3000);
      expect(delayOf(second)).toBeLessThan(3100);
      await bus.dispatch("w-flaky", { failTimes: 2 }, { runId, attemptsBefore: 2, dispatch: 2 });
      const done = await bus.outcome(runId);
      expect(done).toMatchObject({ type: "COMPLETED", attempt: 3, result: { attempt: 3 } });
      // Each try is shorter than the RUNNING delay: it reports its start with its outcome.
      expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["AWAITING_RETRY", "AWAITING_RETRY", "COMPLETED"]);
      for (const e of bus.eventsOf(runId)) expect(Date.parse(e.startedAt!)).toBeLessThanOrEqual(Date.parse(e.at));
      // onCompletion ran once, with the value, after the COMPLETED event was accepted; onFailure never did.
      const hooks = await waitFor("the onCompletion hook", () => {
        const h = hookCalls.filter((c) => c.run.runId === runId);
        return h.length > 0 ? h : undefined;
      });
      expect(hooks.map((h) => h.hook)).toEqual(["onCompletion"]);
      expect(hooks[0]).toMatchObject({ value: { attempt: 3 }, run: { attempt: 3, task: "w-flaky", parameters: { failTimes: 2 }, workerId: server.workerId } });
      expect(hooks[0]!.at).toBeGreaterThanOrEqual(Date.parse(done.at));
    });

    it("the last try's failure is FAILED with its error, and calls onFailure once", async () => {
      const runId = await bus.dispatch("w-flaky", { failTimes: 9 }, { attemptsBefore: 2 });
      const done = await bus.outcome(runId);
      expect(done).toMatchObject({ type: "FAILED", attempt: 3, error: { type: "FlakyError", message: "try 3 failed" } });
      expect(done.retryAt).toBeUndefined();
      const hook = await waitFor("the onFailure hook", () => hookCalls.find((c) => c.run.runId === runId));
      expect(hook.hook).toBe("onFailure");
      expect(hook.value).toBeInstanceOf(FlakyError);
      await sleep(100);
      expect(hookCalls.filter((c) => c.run.runId === runId)).toHaveLength(1);
    });

    it("NonRetryableError fails the run at once, with retries left", async () => {
      const runId = await bus.dispatch("w-fatal", {});
      expect(await bus.outcome(runId)).toMatchObject({ type: "FAILED", attempt: 1, error: { type: "NonRetryableError", message: "the input can never work" } });
      expect(bus.eventsOf(runId).some((e) => e.type === "AWAITING_RETRY")).toBe(false);
    });

    it("RetryAfterError's own delay wins over the task's", async () => {
      const runId = await bus.dispatch("w-throttled", {});
      const retry = await bus.event(runId, "AWAITING_RETRY");
      expect(retry.error).toMatchObject({ type: "RetryAfterError", message: "rate limited" });
      expect(delayOf(retry)).toBeGreaterThanOrEqual(7000);
      expect(delayOf(retry)).toBeLessThan(7100);
    });

    it("retryOn by class name retries a subclass of a listed error, and fails any other error at once", async () => {
      const http = await bus.dispatch("w-picky", { kind: "http" });
      expect(await bus.event(http, "AWAITING_RETRY")).toMatchObject({ error: { type: "NotFoundError" } });
      const bug = await bus.dispatch("w-picky", { kind: "type" });
      expect(await bus.outcome(bug)).toMatchObject({ type: "FAILED", error: { type: "TypeError", message: "a bug" } });
    });
  });

  describe("timeouts", () => {
    it("a try that ignores its signal past the timeout is AWAITING_RETRY TimeoutError (FAILED on the last), and its slot goes to other runs at once", async () => {
      // Both slots go to runs that sleep past their timeout without looking at their signal.
      const first = await bus.dispatch("w-stubborn", {});
      const last = await bus.dispatch("w-stubborn", {}, { attemptsBefore: 1 });
      const retry = await bus.event(first, "AWAITING_RETRY");
      expect(retry.error).toMatchObject({ type: "TimeoutError", message: expect.stringContaining("0.3s") });
      expect(await bus.outcome(last)).toMatchObject({ type: "FAILED", attempt: 2, error: { type: "TimeoutError" } });
      // With both functions still asleep, a new run gets a slot and completes.
      const quick = await bus.dispatch("w-add", { a: 1, b: 2 });
      expect(await bus.outcome(quick)).toMatchObject({ type: "COMPLETED", result: 3 });
      expect(signals.get(`${first}:1`)?.finished).toBe(false);
      expect(signals.get(`${last}:2`)?.finished).toBe(false);
      // The functions saw their signal aborted once they looked.
      await waitFor("the stubborn functions to return", () => signals.get(`${first}:1`)?.finished && signals.get(`${last}:2`)?.finished, 15_000);
      expect(signals.get(`${first}:1`)?.aborted).toBe(true);
    });
  });

  describe("cancellation", () => {
    it("a run whose id is in the cancellations bucket before it starts is never called: CANCELLED, and its message acked", async () => {
      const runId = randomUUID();
      await cancellations.put(runId, JSON.stringify({ cancelledAt: new Date().toISOString() }));
      await bus.dispatch("w-add", { a: 1, b: 1 }, { runId });
      expect(await bus.outcome(runId)).toMatchObject({ type: "CANCELLED" });
      await settled("w-add");
      expect(calls.get(runId)).toBeUndefined();
      expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["CANCELLED"]);
    });

    it("the check before a run starts is answered from the process's own set of cancels, without asking the bucket", async () => {
      // Every read of a KV key is a request on one of these subjects; a plain subscription sees the worker's too.
      const reads: string[] = [];
      const subs = ["$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>"].map((subject) => bus.nc.subscribe(subject, { callback: (_err, m) => void reads.push(m.string()) }));
      await bus.nc.flush();
      try {
        const cancelled = randomUUID();
        await cancellations.put(cancelled, JSON.stringify({ cancelledAt: new Date().toISOString() }));
        await bus.dispatch("w-add", { a: 1, b: 1 }, { runId: cancelled });
        const other = await bus.dispatch("w-add", { a: 2, b: 1 });
        expect(await bus.outcome(cancelled)).toMatchObject({ type: "CANCELLED" });
        expect(await bus.outcome(other)).toMatchObject({ type: "COMPLETED", result: 3 });
        expect(calls.get(cancelled)).toBeUndefined();
        expect(reads.filter((r) => r.includes(cancelled) || r.includes(other))).toEqual([]);
      } finally {
        for (const sub of subs) sub.unsubscribe();
      }
    });

    it("a cancel stored before the worker started is in its set: the run is never called", async () => {
      const runId = randomUUID();
      await cancellations.put(runId, JSON.stringify({ cancelledAt: new Date().toISOString() }));
      const late = await serve([task({ name: "w-late", input: z.object({}) }, (_i, ctx) => void count(ctx.runId))], { natsUrl: nats.url, logger: pino({ level: "silent" }) });
      try {
        await bus.dispatch("w-late", {}, { runId });
        expect(await bus.outcome(runId)).toMatchObject({ type: "CANCELLED" });
        expect(calls.get(runId)).toBeUndefined();
      } finally {
        await late.stop();
      }
    });

    it("a running run is aborted when its id lands in the bucket: the function sees its signal aborted, the run is CANCELLED", async () => {
      const runId = await bus.dispatch("w-wait", {});
      await bus.event(runId, "RUNNING");
      await cancellations.put(runId, JSON.stringify({ cancelledAt: new Date().toISOString() }));
      expect(await bus.outcome(runId)).toMatchObject({ type: "CANCELLED", attempt: 1 });
      await settled("w-wait");
      await waitFor("the function to return", () => signals.get(runId)?.finished);
      expect(signals.get(runId)).toMatchObject({ aborted: true, reason: "RunCancelledError" });
    });

    it("a running run that ignores its signal is CANCELLED all the same, without waiting for it", async () => {
      const runId = await bus.dispatch("w-wait", { ignore: true });
      await bus.event(runId, "RUNNING");
      await cancellations.put(runId, JSON.stringify({ cancelledAt: new Date().toISOString() }));
      expect(await bus.outcome(runId)).toMatchObject({ type: "CANCELLED" });
      expect(signals.get(runId)?.finished).toBe(false);
      // Other runs are not touched.
      const other = await bus.dispatch("w-add", { a: 2, b: 2 });
      expect(await bus.outcome(other)).toMatchObject({ type: "COMPLETED", result: 4 });
    });
  });

  describe("results", () => {
    it("a result over the inline limit goes to the object store under the run id; a small one rides in the event", async () => {
      const small = await bus.dispatch("w-big", { chars: 100 });
      expect(await bus.outcome(small)).toMatchObject({ type: "COMPLETED", result: { text: "x".repeat(100) } });
      // 2 MiB: past the limit given to serve() and past what one NATS message holds.
      const large = await bus.dispatch("w-big", { chars: 2 * 1024 * 1024 });
      const done = await bus.outcome(large);
      expect(done).toMatchObject({ type: "COMPLETED", resultRef: large });
      expect(done.result).toBeUndefined();
      const store = await new Objm(bus.js).open(Nats.resultsBucket);
      const blob = await store.getBlob(large);
      expect(JSON.parse(Buffer.from(blob!).toString("utf8"))).toEqual({ text: "x".repeat(2 * 1024 * 1024) });
    });
  });

  describe("run logs", () => {
    it("ctx.log lines at info and above go to the run's own subject of OFFLOAD_LOGS, as RunLogLines", async () => {
      const stream = await jsm.streams.info(Nats.logsStream);
      expect(stream.config).toMatchObject({ subjects: [Nats.logsWildcard], retention: "limits", storage: "file", max_msgs_per_subject: MAX_LOG_LINES_PER_RUN });
      const [a, b] = await Promise.all([bus.dispatch("w-chatty", { tag: "a" }), bus.dispatch("w-chatty", { tag: "b" })]);
      await Promise.all([bus.outcome(a), bus.outcome(b)]);
      const linesOf = async (runId: string): Promise<RunLogLine[]> => {
        const lines: RunLogLine[] = [];
        const consumer = await bus.js.consumers.get(Nats.logsStream, { filter_subjects: Nats.logSubject(runId) });
        const batch = await consumer.fetch({ max_messages: 100, expires: 1000 });
        for await (const m of batch) {
          lines.push(RunLogLineSchema.parse(m.json()));
          if (m.info.pending === 0) break;
        }
        await consumer.delete();
        return lines;
      };
      const lines = await waitFor("three lines of run a", async () => {
        const l = await linesOf(a);
        return l.length >= 3 ? l : undefined;
      });
      expect(lines.map((l) => [l.level, l.msg])).toEqual([
        ["info", "hello a"],
        ["warn", "careful"],
        ["error", "bad a"],
      ]);
      expect(lines[0]).toMatchObject({ attempt: 1, data: { step: 1, tag: "a" } });
      expect(lines[2]!.data).toMatchObject({ err: { type: "Error", message: "bad a" } });
      expect((await linesOf(b)).map((l) => l.msg)).toEqual(["hello b", "careful", "bad b"]);
      // The worker's own log still has every line, with the run's bindings.
      expect(logged.some((l) => l.includes('"msg":"hello a"') && l.includes(`"runId":"${a}"`))).toBe(true);
    });
  });

  describe("hooks", () => {
    it("a hook that throws is logged and changes nothing", async () => {
      const runId = await bus.dispatch("w-hook-throws", {});
      expect(await bus.outcome(runId)).toMatchObject({ type: "COMPLETED", result: "fine" });
      await waitFor("the hook's error to be logged", () => logged.some((l) => l.includes("onCompletion hook threw") && l.includes("hook trouble")));
      await sleep(200);
      expect(bus.eventsOf(runId).map((e) => e.type)).toEqual(["COMPLETED"]);
    });
  });

  describe("max deliveries", () => {
    it("sets the task consumer's max_deliver (default 10)", async () => {
      const info = await jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer("w-add"));
      expect(info.config.max_deliver).toBe(10);
    });

    it("gives up on a message that kills every worker taking it, after OFFLOAD_MAX_DELIVER deliveries", async () => {
      const fixture = fileURLToPath(new URL("./fixtures/worker-crash.mjs", import.meta.url));
      // RUNNING at once, before the task is called: the test counts deliveries by it, and the task kills its worker soon.
      const env = { OFFLOAD_MAX_DELIVER: "2", OFFLOAD_ACK_WAIT_SECONDS: "1", OFFLOAD_RUNNING_EVENT_DELAY_MS: "0" };
      const advisories: string[] = [];
      const sub = bus.nc.subscribe(Nats.maxDeliveriesAdvisory, { callback: (_err, m) => void advisories.push(m.string()) });
      const runId = await bus.dispatch("poison", {});
      // Each worker takes the run and dies of it; the next takes the redelivery.
      for (let i = 1; i <= 2; i++) {
        const w = await startWorker(nats.url, ["--module", fixture], env, `poison-worker-${i}`);
        processes.push(w);
        expect(await w.child.exited).not.toBe(0);
        // The RUNNING event may still be on its way to the bus's subscription when the worker is gone.
        await bus.event(runId, "RUNNING", i);
        expect(bus.eventsOf(runId).filter((e) => e.type === "RUNNING")).toHaveLength(i);
      }
      const survivor = await startWorker(nats.url, ["--module", fixture], env, "poison-worker-3");
      processes.push(survivor);
      await waitFor("the max-deliveries advisory", () => advisories.length > 0, 10_000);
      expect(advisories[0]).toContain(Nats.taskConsumer("poison"));
      expect((await jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer("poison"))).config.max_deliver).toBe(2);
      await sleep(1500);
      expect(bus.eventsOf(runId).filter((e) => e.type === "RUNNING")).toHaveLength(2);
      expect(survivor.child.proc.exitCode).toBeNull();
      sub.unsubscribe();
    });
  });
});
