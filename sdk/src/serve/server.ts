/**
 * A serve() worker's lifecycle, and the wiring of its parts. start() ensures
 * the NATS layout, opens the cancellations watch, then starts one pull loop
 * per task, the heartbeats and the registration of the tasks' definitions
 * with the run API (in the background: it never holds up serving); stop() drains: no new runs, runs in flight
 * finish within `drainSeconds` or are abandoned (and redelivered), task
 * hooks get what is left of that time, then the connection is drained so
 * the last acks and naks reach the server. Pulling, executing and reporting
 * runs each live in their own module; this one only builds them and tears
 * them down, in that order.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { natsConnectOptions } from "../config.js";
import { ensureBuckets, ensureStreams } from "../nats/layout.js";
import type { Task } from "../task.js";
import { Cancellations } from "./cancellations.js";
import { EVENT_PUBLISH_TIMEOUT_MS, RunReporter } from "./events.js";
import { JetStreamPublisher } from "../nats/publisher.js";
import { execute, type ExecuteDeps } from "./execute.js";
import { startHeartbeats } from "./heartbeats.js";
import { Hint } from "./hint.js";
import { Hooks } from "./hooks.js";
import { InFlight } from "./in-flight.js";
import type { Server, ServeOptions } from "./index.js";
import { compileOptions, type CompiledOptions } from "./options.js";
import { pullLoop } from "./pull.js";
import { startRegistration } from "./register.js";
import { ResultStore } from "./results.js";
import { Slots } from "./slots.js";
import { TASK_MAX_ACK_PENDING, ensureTaskConsumer, type TaskConsumerSettings } from "./streams.js";

// How long stop() still waits, past the drain time, for abandoned runs that are busy reporting.
const ABANDON_GRACE_MS = 3_000;

export async function startServer(tasks: readonly Task[], options: ServeOptions): Promise<Server> {
  const opts = compileOptions(tasks, options);
  const nc = await connect(natsConnectOptions(opts.servers, `offload-worker ${opts.workerId}`));
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
  readonly #inFlight: InFlight;
  readonly #hooks: Hooks;
  readonly #hints: Hint[] = [];
  readonly #loops: Promise<void>[] = [];
  #cancellations: Cancellations | undefined;
  #stopHeartbeats: (() => void) | undefined;
  #stopRegistration: (() => void) | undefined;

  constructor(opts: CompiledOptions, nc: NatsConnection) {
    this.#opts = opts;
    this.#nc = nc;
    this.#js = jetstream(nc);
    this.workerId = opts.workerId;
    this.tasks = opts.tasks.map((t) => t.name);
    this.concurrency = opts.concurrency;
    this.#log = opts.logger.child({ workerId: opts.workerId });
    this.#slots = new Slots(opts.concurrency);
    this.#inFlight = new InFlight(this.#slots, this.#log);
    this.#hooks = new Hooks(opts.hooks, this.#log);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // If NATS goes away for good, abandon what runs and report closed. (Not
    // while starting: a failed start closes the connection itself and throws.)
    void nc.closed().then((err) => {
      if (this.#stopping || !this.#ready) return;
      this.#log.error({ err }, "NATS connection closed; the worker stops");
      void this.stop();
    });
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get ready(): boolean {
    return this.#ready && !this.#stopping;
  }

  async start(): Promise<void> {
    const nc = this.#nc;
    const log = this.#log;
    const stopping = (): boolean => this.#stopping;
    const inFlight = (task: string): number => this.#inFlight.of(task);
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm);
    const buckets = await ensureBuckets(this.#js);
    // Watch before consuming, so that no cancellation of a run this process takes goes unseen.
    const cancellations = await Cancellations.watch(buckets.cancellations, { log, stopping, connectionClosed: () => nc.isClosed() });
    this.#cancellations = cancellations;
    const consumerSettings: TaskConsumerSettings = { ackWaitSeconds: this.#opts.ackWaitSeconds, maxAckPending: TASK_MAX_ACK_PENDING, maxDeliver: this.#opts.maxDeliver };
    for (const t of this.#opts.tasks) await ensureTaskConsumer(jsm, t.name, consumerSettings);

    const run: ExecuteDeps = {
      workerId: this.workerId,
      ackWaitSeconds: this.#opts.ackWaitSeconds,
      runningEventDelayMs: this.#opts.runningEventDelayMs,
      runLogLevel: this.#opts.runLogLevel,
      log,
      cancellations,
      reporter: new RunReporter(nc, new JetStreamPublisher(nc, { timeoutMs: EVENT_PUBLISH_TIMEOUT_MS }), this.workerId, { batch: this.#opts.batchEvents }),
      results: new ResultStore(buckets.results, this.#opts.resultInlineLimitBytes, () => nc.info?.max_payload),
      hooks: this.#hooks,
    };
    const launch = (task: Task, msg: JsMsg): void => this.#inFlight.launch(task.name, (abandoned) => execute(run, task, msg, abandoned));
    for (const t of this.#opts.tasks) {
      const hint = new Hint();
      this.#hints.push(hint);
      this.#loops.push(pullLoop(t, hint, { nc, js: this.#js, jsm, slots: this.#slots, concurrency: this.concurrency, shared: this.#opts.tasks.length > 1, consumerSettings, log, stopping, inFlight, launch }));
    }
    this.#stopHeartbeats = startHeartbeats({ nc, workerId: this.workerId, concurrency: this.concurrency, tasks: this.tasks, log, inFlight });
    // A task made by an older copy of the SDK has no definition() to register.
    const definitions = this.#opts.tasks.flatMap((t) => (typeof t.definition === "function" ? [t.definition()] : []));
    if (definitions.length > 0) this.#stopRegistration = startRegistration({ nc, workerId: this.workerId, tasks: definitions, log });
    this.#ready = true;
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#stopRegistration?.();
    this.#log.info({ inFlight: this.#inFlight.size, drainSeconds: this.#opts.drainSeconds }, "stopping: no new runs, waiting for runs in flight");
    this.#slots.close();
    for (const h of this.#hints) h.set();
    // Open fetches are left to expire (within seconds) rather than closed: the
    // server would still deliver into them; what arrives is released with a delayed nak().
    const loopsDone = Promise.allSettled(this.#loops);

    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.#opts.drainSeconds * 1000)));
    if (this.#inFlight.size > 0) {
      const first = await Promise.race([this.#inFlight.done().then(() => "done" as const), deadline]);
      if (first === "timeout" && this.#inFlight.size > 0) {
        this.#log.warn({ abandoned: this.#inFlight.size }, "drain time is up: abandoning the runs still in flight (they will be redelivered)");
        this.#inFlight.abandonAll();
        // An abandoned run inside the task function ends at once; one that is
        // publishing its outcome (retried for up to ~20 s) does not listen.
        // Give those a short grace, then close anyway: unacked, they are redelivered.
        let grace: NodeJS.Timeout | undefined;
        const settled = await Promise.race([
          this.#inFlight.done().then(() => true),
          new Promise<false>((resolve) => (grace = setTimeout(() => resolve(false), ABANDON_GRACE_MS))),
        ]);
        clearTimeout(grace);
        if (!settled) this.#log.warn({ runs: this.#inFlight.size }, "runs still reporting their outcome after the drain time: closing anyway (they will be redelivered)");
      }
    }
    if (this.#hooks.taskHooksRunning > 0) {
      const first = await Promise.race([this.#hooks.taskHooksDone().then(() => "done" as const), deadline]);
      if (first === "timeout") this.#log.warn({ hooks: this.#hooks.taskHooksRunning }, "drain time is up: not waiting for onCompletion/onFailure hooks still running");
    }
    clearTimeout(timer);
    const cancellationsDone = this.#cancellations?.stop();
    await loopsDone;
    await cancellationsDone;
    this.#stopHeartbeats?.();
    if (!this.#nc.isClosed()) {
      // drain() flushes the acks and naks just sent, then closes.
      await this.#nc.drain().catch(async () => void (await this.#nc.close().catch(() => undefined)));
    }
    this.#log.info("stopped");
    this.#resolveClosed();
  }
}
