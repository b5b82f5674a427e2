import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { KvWatchInclude, type KvWatchEntry } from "@nats-io/kv";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { InputValidationError, ResultNotSerializableError, RunCancelledError, TaskTimeoutError } from "../errors.js";
import { Nats, TaskMessageSchema, type Heartbeat, type Json, type RunError, type RunEvent, type RunLogLine, type TaskMessage } from "../protocol/index.js";
import { decideRetry } from "../retries.js";
import type { Task, TaskContext, TaskRunInfo } from "../task.js";
import type { RunInfo, RunOutcome, Server, ServeOptions } from "./index.js";
import { compileOptions, type CompiledOptions } from "./options.js";
import { runLogger } from "./run-log.js";
import { Slots } from "./slots.js";
import { ensureBuckets, ensureStreams, type Buckets } from "../nats/layout.js";
import { ensureTaskConsumer, type TaskConsumerSettings } from "./streams.js";

const HEARTBEAT_MS = 5_000;
const FETCH_EXPIRES_MS = 2_000;
// An idle task's probe holds a slot while it waits, so it waits less.
const PROBE_EXPIRES_MS = 1_000;
// A message released by a stopping worker is redelivered after this delay:
// longer than a fetch lives, since nats-server keeps delivering into pull
// requests until they expire, even once the client stopped listening.
const RELEASE_DELAY_MS = FETCH_EXPIRES_MS + 500;
// How often an idle task checks its consumer for work no hint announced (redeliveries).
const IDLE_CHECK_MS = 3_000;
const MAX_ACK_PENDING = 10_000;
const PUBLISH_TRIES = 4;

/** A run in flight: what stop() needs to abandon it. */
interface ActiveRun {
  readonly task: string;
  readonly done: Promise<void>;
  abandon(): void;
}

type Ending =
  /** `value` is what the task returned; `json` its JSON text. */
  | { kind: "completed"; value: unknown; json: string }
  /** `thrown` is what failed the try (what the task threw, or the worker's own error for a timeout, bad input or result). */
  | { kind: "failed"; error: RunError; thrown: unknown }
  | { kind: "cancelled" }
  | { kind: "abandoned" };

/** A run's stake in the cancellations bucket while this process has it. */
interface CancelWatch {
  /** True once the run's id was seen in the bucket. */
  readonly requested: boolean;
  /** Resolves once the run's id is seen in the bucket. */
  readonly promise: Promise<void>;
  dispose(): void;
}

/** The reason a run's signal is aborted when the worker stops before the run finished. */
class WorkerStoppingError extends Error {
  constructor() {
    super("the worker is stopping; the run will be redelivered");
    this.name = "WorkerStoppingError";
  }
}

export async function startServer(tasks: readonly Task[], options: ServeOptions): Promise<Server> {
  const opts = compileOptions(tasks, options);
  const nc = await connect({ servers: opts.servers, name: `offload-worker ${opts.workerId}`, maxReconnectAttempts: -1 });
  try {
    const server = new TaskServer(opts, nc);
    await server.start();
    return server;
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}

class TaskServer implements Server {
  readonly workerId: string;
  readonly tasks: readonly string[];
  readonly concurrency: number;
  readonly closed: Promise<void>;
  #ready = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #resolveClosed!: () => void;
  readonly #opts: CompiledOptions;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #log: Logger;
  readonly #slots: Slots;
  readonly #active = new Set<ActiveRun>();
  readonly #hints = new Set<Hint>();
  #jsm: JetStreamManager | undefined;
  readonly #loops: Promise<void>[] = [];
  readonly #inFlightByTask = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | undefined;
  #buckets!: Buckets;
  readonly #cancelWaiters = new Map<string, Set<() => void>>();
  #cancelWatch: { stop(): void } | undefined;
  #cancelLoop: Promise<void> | undefined;
  // onCompletion/onFailure calls still running: stop() waits for them (within the drain time).
  readonly #taskHooks = new Set<Promise<void>>();

  constructor(opts: CompiledOptions, nc: NatsConnection) {
    this.#opts = opts;
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.workerId = opts.workerId;
    this.tasks = opts.tasks.map((t) => t.name);
    this.concurrency = opts.concurrency;
    this.#log = opts.logger.child({ workerId: opts.workerId });
    this.#slots = new Slots(opts.concurrency);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // If NATS goes away for good, abandon what runs and report closed.
    void nc.closed().then((err) => {
      if (this.#stopping) return;
      this.#log.error({ err }, "NATS connection closed; the worker stops");
      void this.stop();
    });
  }

  get inFlight(): number {
    return this.#active.size;
  }

  get ready(): boolean {
    return this.#ready && !this.#stopping;
  }

  get #consumerSettings(): TaskConsumerSettings {
    return { ackWaitSeconds: this.#opts.ackWaitSeconds, maxAckPending: MAX_ACK_PENDING, maxDeliver: this.#opts.maxDeliver };
  }

  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.#nc);
    this.#jsm = jsm;
    await ensureStreams(jsm);
    this.#buckets = await ensureBuckets(this.#js);
    // Watch before consuming, so that no cancellation of a run this process takes goes unseen.
    this.#cancelLoop = this.#watchCancellations(await this.#openCancelWatch());
    for (const t of this.#opts.tasks) await ensureTaskConsumer(jsm, t.name, this.#consumerSettings);
    for (const t of this.#opts.tasks) this.#loops.push(this.#pullLoop(t));
    this.#sendHeartbeats();
    this.#heartbeat = setInterval(() => this.#sendHeartbeats(), HEARTBEAT_MS);
    this.#ready = true;
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#log.info({ inFlight: this.#active.size, drainSeconds: this.#opts.drainSeconds }, "stopping: no new runs, waiting for runs in flight");
    this.#slots.close();
    for (const h of this.#hints) h.set();
    // Open fetches are left to expire (within seconds) rather than closed: the
    // server would still deliver into them; what arrives is released with a delayed nak().
    const loopsDone = Promise.allSettled(this.#loops);

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.#opts.drainSeconds * 1000)));
    if (this.#active.size > 0) {
      const all = Promise.allSettled([...this.#active].map((r) => r.done)).then(() => "done" as const);
      const first = await Promise.race([all, deadline]);
      if (first === "timeout" && this.#active.size > 0) {
        this.#log.warn({ abandoned: this.#active.size }, "drain time is up: abandoning the runs still in flight (they will be redelivered)");
        for (const r of [...this.#active]) r.abandon();
        await Promise.allSettled([...this.#active].map((r) => r.done));
      }
    }
    if (this.#taskHooks.size > 0) {
      const first = await Promise.race([Promise.allSettled([...this.#taskHooks]).then(() => "done" as const), deadline]);
      if (first === "timeout") this.#log.warn({ hooks: this.#taskHooks.size }, "drain time is up: not waiting for onCompletion/onFailure hooks still running");
    }
    clearTimeout(timer);
    this.#cancelWatch?.stop();
    await loopsDone;
    await this.#cancelLoop;
    clearInterval(this.#heartbeat);
    if (!this.#nc.isClosed()) {
      // drain() flushes the acks and naks just sent, then closes.
      await this.#nc.drain().catch(async () => void (await this.#nc.close().catch(() => undefined)));
    }
    this.#log.info("stopped");
    this.#resolveClosed();
  }

  #sendHeartbeats(): void {
    if (this.#nc.isClosed() || this.#nc.isDraining()) return;
    for (const t of this.#opts.tasks) {
      const hb: Heartbeat = {
        workerId: this.workerId,
        task: t.name,
        concurrency: this.concurrency,
        inFlight: this.#inFlightByTask.get(t.name) ?? 0,
        at: new Date().toISOString(),
      };
      try {
        this.#nc.publish(Nats.heartbeatSubject(t.name), JSON.stringify(hb));
      } catch (err) {
        this.#log.debug({ err }, "heartbeat not sent");
      }
    }
  }

  // One per task. Fetches only as many messages as there are free slots, so
  // no message waits in a buffer while its ack wait runs. A task that found
  // nothing holds no slot while idle: it waits for a hint that there may be
  // work (a new message seen on its subject, or its consumer showing pending
  // or unacked messages), so that idle tasks never starve busy ones.
  async #pullLoop(task: Task): Promise<void> {
    const log = this.#log.child({ task: task.name });
    const hint = new Hint();
    this.#hints.add(hint);
    const sub = this.#nc.subscribe(Nats.taskSubject(task.name), { callback: () => hint.set() });
    // Start idle: a task with no backlog should not hold slots other tasks' backlog could use.
    let idle = true;
    let consumer: Consumer | undefined;
    try {
      while (!this.#stopping) {
        if (idle && !hint.isSet && !(await this.#mayHaveWork(task))) {
          await hint.wait(IDLE_CHECK_MS);
          continue;
        }
        const taken = await this.#slots.take(idle ? 1 : this.concurrency);
        if (taken === 0) break;
        hint.clear();
        let used = 0;
        try {
          consumer ??= await this.#js.consumers.get(Nats.tasksStream, Nats.taskConsumer(task.name));
          const batch = await consumer.fetch({ max_messages: taken, expires: idle ? PROBE_EXPIRES_MS : FETCH_EXPIRES_MS });
          for await (const msg of batch) {
            // Not started here: hand it on (it counts as a delivery, so its attempt number skips one).
            if (this.#stopping || used >= taken) {
              settle(() => msg.nak(RELEASE_DELAY_MS));
              continue;
            }
            used++;
            this.#launch(task, msg);
          }
        } catch (err) {
          if (this.#stopping) break;
          log.warn({ err }, "fetching runs failed; trying again");
          consumer = undefined;
          await sleep(1000);
          await this.#repairConsumer(task, log);
        } finally {
          this.#slots.give(taken - used);
        }
        idle = used === 0;
      }
    } finally {
      sub.unsubscribe();
      this.#hints.delete(hint);
    }
  }

  // Whether an idle task should probe: messages not yet delivered, or
  // delivered but unacked beyond our own runs (a dead worker's, due for redelivery).
  async #mayHaveWork(task: Task): Promise<boolean> {
    try {
      this.#jsm ??= await jetstreamManager(this.#nc);
      const info = await this.#jsm.consumers.info(Nats.tasksStream, Nats.taskConsumer(task.name));
      return info.num_pending > 0 || info.num_ack_pending > (this.#inFlightByTask.get(task.name) ?? 0);
    } catch {
      return true;
    }
  }

  async #repairConsumer(task: Task, log: Logger): Promise<void> {
    if (this.#stopping || this.#nc.isClosed()) return;
    try {
      const jsm = await jetstreamManager(this.#nc);
      await ensureStreams(jsm);
      await ensureTaskConsumer(jsm, task.name, this.#consumerSettings);
    } catch (err) {
      log.debug({ err }, "could not ensure the task consumer");
    }
  }

  #launch(task: Task, msg: JsMsg): void {
    let abandon: () => void = () => undefined;
    const abandoned = new Promise<Ending>((resolve) => (abandon = () => resolve({ kind: "abandoned" })));
    const run: ActiveRun = {
      task: task.name,
      abandon: () => abandon(),
      done: Promise.resolve()
        .then(() => this.#handle(task, msg, abandoned))
        .catch((err: unknown) => this.#log.error({ err, task: task.name }, "run handling failed"))
        .finally(() => {
          this.#active.delete(run);
          this.#inFlightByTask.set(task.name, (this.#inFlightByTask.get(task.name) ?? 1) - 1);
          this.#slots.give(1);
        }),
    };
    this.#active.add(run);
    this.#inFlightByTask.set(task.name, (this.#inFlightByTask.get(task.name) ?? 0) + 1);
  }

  async #handle(task: Task, msg: JsMsg, abandoned: Promise<Ending>): Promise<void> {
    let message: TaskMessage;
    try {
      message = TaskMessageSchema.parse(JSON.parse(msg.string()));
      if (message.task !== task.name) throw new Error(`message is for task "${message.task}", not "${task.name}"`);
    } catch (err) {
      this.#log.error({ err, task: task.name, subject: msg.subject, seq: msg.seq }, "malformed task message: dropped");
      settle(() => msg.term("malformed task message"));
      return;
    }
    const info: RunInfo = { runId: message.runId, task: task.name, attempt: message.attemptsBefore + msg.info.deliveryCount };
    const log = this.#log.child({ runId: info.runId, task: info.task, attempt: info.attempt });
    // Watched from before the check, so that a cancel landing in between is not missed.
    const cancel = this.#watchCancel(info.runId);
    // In-progress acks keep the message ours for as long as the run takes.
    const working = setInterval(() => settle(() => msg.working()), (this.#opts.ackWaitSeconds * 1000) / 3);
    try {
      if (cancel.requested || (await this.#isCancelled(info.runId, log))) {
        // Never started: the run API has (or will have) marked it CANCELLED; the event covers an API that died in between.
        await this.#publish(info, "CANCELLED", {}).catch((err: unknown) => log.warn({ err }, "could not publish CANCELLED"));
        settle(() => msg.ack());
        log.info("run cancelled before it started: not running it");
        return;
      }
      const startedAt = performance.now();
      try {
        await this.#publish(info, "RUNNING", {});
      } catch (err) {
        log.error({ err }, "could not publish RUNNING; releasing the message");
        settle(() => msg.nak(1000));
        return;
      }
      this.#hook(() => this.#opts.hooks.runStarted?.(info));
      log.debug("run started");

      const runLog = runLogger(log, this.#opts.runLogLevel, info.attempt, (line) => this.#publishLogLine(info.runId, line));
      const ending = await this.#execute(task, message, info, runLog, abandoned, cancel);
      const durationSeconds = (performance.now() - startedAt) / 1000;
      if (ending.kind === "abandoned") {
        // Released for redelivery (as the next attempt) once this process's fetches have expired.
        settle(() => msg.nak(RELEASE_DELAY_MS));
        log.warn({ durationSeconds }, "run abandoned: the worker stopped before it finished; it will be redelivered");
        this.#finished(info, "ABANDONED", durationSeconds);
        return;
      }

      let type: RunEvent["type"];
      let fields: Partial<RunEvent>;
      let retryDelaySeconds = 0;
      switch (ending.kind) {
        case "cancelled":
          type = "CANCELLED";
          fields = {};
          break;
        case "completed":
          type = "COMPLETED";
          try {
            fields = await this.#resultFields(info, ending.json);
          } catch (err) {
            log.error({ err }, "could not store the result; releasing the message for redelivery");
            settle(() => msg.nak(1000));
            this.#finished(info, "ABANDONED", durationSeconds);
            return;
          }
          break;
        case "failed": {
          const decision = decideRetry(task.options, info.attempt, ending.thrown);
          if (decision.retry) {
            type = "AWAITING_RETRY";
            retryDelaySeconds = decision.delaySeconds;
            // One clock reading for both, so that retryAt - at is the delay exactly.
            const now = Date.now();
            fields = { error: ending.error, at: new Date(now).toISOString(), retryAt: new Date(now + decision.delaySeconds * 1000).toISOString() };
          } else {
            type = "FAILED";
            fields = { error: ending.error };
          }
          break;
        }
      }
      try {
        await this.#publish(info, type, fields);
      } catch (err) {
        // Not acked: JetStream redelivers and the run is tried again.
        log.error({ err }, `could not publish ${type}; releasing the message for redelivery`);
        settle(() => msg.nak(1000));
        this.#finished(info, "ABANDONED", durationSeconds);
        return;
      }
      settle(() => msg.ack());
      const error = ending.kind === "failed" ? ending.error : undefined;
      if (type === "COMPLETED") log.info({ durationSeconds, ...(fields.resultRef ? { resultRef: fields.resultRef } : {}) }, "run completed");
      else if (type === "AWAITING_RETRY") log.info({ durationSeconds, error, retryInSeconds: retryDelaySeconds }, "run failed; retry due later");
      else if (type === "CANCELLED") log.info({ durationSeconds }, "run cancelled");
      else log.info({ durationSeconds, error }, "run failed");
      this.#finished(info, type, durationSeconds, error);

      const hookInfo: TaskRunInfo = { ...info, workerId: this.workerId, parameters: message.parameters, log: runLog };
      if (ending.kind === "completed" && task.options.onCompletion) {
        const onCompletion = task.options.onCompletion.bind(task.options);
        this.#taskHook("onCompletion", log, () => onCompletion(hookInfo, ending.value));
      } else if (type === "FAILED" && ending.kind === "failed" && task.options.onFailure) {
        const onFailure = task.options.onFailure.bind(task.options);
        this.#taskHook("onFailure", log, () => onFailure(hookInfo, asError(ending.thrown, ending.error)));
      }
    } finally {
      clearInterval(working);
      cancel.dispose();
    }
  }

  async #execute(task: Task, message: TaskMessage, info: RunInfo, log: Logger, abandoned: Promise<Ending>, cancel: CancelWatch): Promise<Ending> {
    // Cancelled while RUNNING was being published: the function is not called at all.
    if (cancel.requested) return { kind: "cancelled" };
    let input = task.options.input.safeParse(message.parameters);
    // A run made without parameters may arrive as null; a schema that takes "nothing" means undefined.
    if (!input.success && message.parameters === null) {
      const none = task.options.input.safeParse(undefined);
      if (none.success) input = none;
    }
    if (!input.success) {
      const err = new InputValidationError(task.name, input.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })));
      return { kind: "failed", error: { type: "InputValidationError", message: err.message }, thrown: err };
    }
    const controller = new AbortController();
    const ctx: TaskContext = {
      runId: info.runId,
      task: info.task,
      attempt: info.attempt,
      signal: controller.signal,
      log,
      workerId: this.workerId,
    };
    const timeoutSeconds = message.timeoutSeconds ?? task.options.timeoutSeconds;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Ending>((resolve) => {
      if (timeoutSeconds === undefined) return;
      timer = setTimeout(() => {
        const err = new TaskTimeoutError(timeoutSeconds);
        controller.abort(err);
        resolve({ kind: "failed", error: errorOf(err), thrown: err });
      }, timeoutSeconds * 1000);
    });
    // Like a timeout, a cancel ends the run now, whether or not the function heeds its signal.
    const cancelledEnding = cancel.promise.then((): Ending => {
      controller.abort(new RunCancelledError(info.runId));
      return { kind: "cancelled" };
    });
    const ran = Promise.resolve()
      .then(() => task.fn(input.data, ctx))
      .then(
        (value): Ending => {
          const json = toJson(value);
          if (json.ok) return { kind: "completed", value, json: json.text };
          const err = new ResultNotSerializableError(json.message);
          return { kind: "failed", error: errorOf(err), thrown: err };
        },
        (err: unknown): Ending => ({ kind: "failed", error: errorOf(err), thrown: err }),
      );
    try {
      const ending = await Promise.race([ran, timedOut, abandoned, cancelledEnding]);
      if (ending.kind === "abandoned") controller.abort(new WorkerStoppingError());
      return ending;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The fields of a COMPLETED event: the result itself, or a reference to where it was stored. */
  async #resultFields(info: RunInfo, json: string): Promise<Partial<RunEvent>> {
    const bytes = Buffer.from(json);
    const max = this.#nc.info?.max_payload ?? 1024 * 1024;
    // The event wraps the result: leave room for its other fields.
    if (bytes.byteLength <= Math.min(this.#opts.resultInlineLimitBytes, max - 4096)) return { result: JSON.parse(json) as Json };
    await this.#buckets.results.putBlob({ name: info.runId, description: `result of ${info.task} run ${info.runId}` }, bytes);
    return { resultRef: info.runId };
  }

  async #publish(info: RunInfo, type: RunEvent["type"], fields: Partial<RunEvent>): Promise<void> {
    const event: RunEvent = { ...fields, runId: info.runId, task: info.task, type, attempt: info.attempt, workerId: this.workerId, at: fields.at ?? new Date().toISOString() };
    const payload = JSON.stringify(event);
    const msgID = `${info.runId}:${info.attempt}:${type}`;
    for (let i = 1; ; i++) {
      try {
        await this.#js.publish(Nats.eventSubject(info.task), payload, { msgID, timeout: 5000 });
        return;
      } catch (err) {
        if (i >= PUBLISH_TRIES || this.#nc.isClosed()) throw err;
        await sleep(250 * 2 ** i);
      }
    }
  }

  // A core publish: it only buffers, so logging never waits on NATS. The OFFLOAD_LOGS stream stores it, bounded per run.
  #publishLogLine(runId: string, line: RunLogLine): void {
    if (this.#nc.isClosed()) return;
    try {
      this.#nc.publish(Nats.logSubject(runId), JSON.stringify(line));
    } catch {
      // A lost log line must never fail a run.
    }
  }

  // Cancellation: the bucket is checked before a run starts and watched while runs are in flight.
  async #isCancelled(runId: string, log: Logger): Promise<boolean> {
    try {
      const entry = await this.#buckets.cancellations.get(runId);
      return entry?.operation === "PUT";
    } catch (err) {
      // Not knowing must not stop the run: the watch still catches a cancel arriving later.
      log.warn({ err }, "could not check the cancellations bucket; running the run");
      return false;
    }
  }

  #watchCancel(runId: string): CancelWatch {
    let requested = false;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const fire = (): void => {
      requested = true;
      resolve();
    };
    let set = this.#cancelWaiters.get(runId);
    if (!set) this.#cancelWaiters.set(runId, (set = new Set()));
    set.add(fire);
    return {
      get requested() {
        return requested;
      },
      promise,
      dispose: () => {
        set.delete(fire);
        if (set.size === 0 && this.#cancelWaiters.get(runId) === set) this.#cancelWaiters.delete(runId);
      },
    };
  }

  async #openCancelWatch(): Promise<AsyncIterable<KvWatchEntry> & { stop(): void }> {
    const watch = await this.#buckets.cancellations.watch({ include: KvWatchInclude.UpdatesOnly });
    this.#cancelWatch = watch;
    return watch;
  }

  // Runs for the server's life; a watch that ends (NATS trouble) is opened again.
  async #watchCancellations(first: AsyncIterable<KvWatchEntry>): Promise<void> {
    let watch: AsyncIterable<KvWatchEntry> | undefined = first;
    while (!this.#stopping) {
      try {
        watch ??= await this.#openCancelWatch();
        for await (const e of watch) {
          if (e.operation !== "PUT") continue;
          const waiters = this.#cancelWaiters.get(e.key);
          if (waiters) {
            this.#log.info({ runId: e.key }, "cancellation asked for: aborting the run");
            for (const fire of waiters) fire();
          }
        }
      } catch (err) {
        if (!this.#stopping) this.#log.warn({ err }, "watching the cancellations bucket failed; watching again");
      }
      watch = undefined;
      if (!this.#stopping && !this.#nc.isClosed()) await sleep(1000);
      if (this.#nc.isClosed()) return;
    }
  }

  #taskHook(name: string, log: Logger, fn: () => void | Promise<void>): void {
    const p = Promise.resolve()
      .then(fn)
      .catch((err: unknown) => log.error({ err }, `the task's ${name} hook threw; the run's outcome stands`))
      .finally(() => this.#taskHooks.delete(p));
    this.#taskHooks.add(p);
  }

  #finished(info: RunInfo, outcome: RunOutcome, durationSeconds: number, error?: RunError): void {
    this.#hook(() => this.#opts.hooks.runFinished?.({ ...info, outcome, durationSeconds, ...(error ? { error } : {}) }));
  }

  #hook(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.warn({ err }, "a serve() hook threw");
    }
  }
}

/** The `{type, message}` of whatever a task threw. */
export function errorOf(err: unknown): RunError {
  if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
    const e = err as Error;
    const ctor = (e.constructor as { name?: string } | undefined)?.name;
    const type = e.name && e.name !== "Error" ? e.name : ctor && ctor !== "Object" ? ctor : "Error";
    return { type, message: String(e.message ?? "") };
  }
  return { type: "Error", message: typeof err === "string" ? err : safeString(err) };
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A task's return value as JSON text: `undefined` becomes null; anything JSON.stringify rejects or drops is an error. */
export function toJson(value: unknown): { ok: true; text: string } | { ok: false; message: string } {
  if (value === undefined) return { ok: true, text: "null" };
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    return { ok: false, message: `the task's result cannot be turned into JSON: ${(err as Error).message}` };
  }
  if (text === undefined) return { ok: false, message: `the task's result (a ${typeof value}) is not JSON` };
  return { ok: true, text };
}

/** What an onFailure hook gets: the thrown error, or an Error standing for a thrown non-Error. */
function asError(thrown: unknown, error: RunError): Error {
  if (thrown instanceof Error) return thrown;
  const e = new Error(error.message, { cause: thrown });
  e.name = error.type;
  return e;
}

/** A flag with a waiter: set by a message seen on a task's subject (or by stop()). */
class Hint {
  #set = false;
  #wake: (() => void) | undefined;

  get isSet(): boolean {
    return this.#set;
  }

  set(): void {
    this.#set = true;
    this.#wake?.();
  }

  clear(): void {
    this.#set = false;
  }

  /** Resolves true as soon as the flag is set, or false after `ms`. */
  wait(ms: number): Promise<boolean> {
    if (this.#set) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), ms);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(v);
      };
      this.#wake = () => done(true);
    });
  }
}

// Acks and naks throw once the connection is closed; the message is redelivered then anyway.
function settle(fn: () => void): void {
  try {
    fn();
  } catch {
    // nothing to do
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
