/**
 * A worker's registration: it tells the run API the definitions of the tasks
 * it serves (input JSON Schema, limits, retries, timeout) with a core NATS
 * request on `Nats.registerSubject`, which every run API replica answers
 * after storing them. Sent at start and again after every reconnect (the run
 * API may have been replaced meanwhile, or a newer worker registered an older
 * definition); retried with a capped backoff until a replica says ok.
 *
 * It never holds up serving: runs are taken while it is unanswered (the run
 * API then treats the tasks as it did before they were registered). One
 * warning per streak of failures, not one per try: a worker started before
 * any run API would otherwise fill its log.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { Nats, TaskRegistrationReplySchema, type TaskDefinition, type TaskRegistration } from "../protocol/index.js";

/** How long one try waits for a replica's answer. */
const REQUEST_TIMEOUT_MS = 5_000;
/** The backoff between tries: 0.5 s, doubling, at most 10 s. */
export const registrationBackoffMs = (failures: number): number => Math.min(10_000, 500 * 2 ** Math.max(0, failures - 1));
/** Most tasks in one request (the protocol's bound). */
const MAX_TASKS_PER_REQUEST = 1000;

export interface RegistrationDeps {
  readonly nc: NatsConnection;
  readonly workerId: string;
  readonly tasks: readonly TaskDefinition[];
  readonly log: Logger;
  /** The wait before the next try after `failures` failed ones, in ms. Injectable for tests. */
  readonly backoffMs?: (failures: number) => number;
}

/** Registers now and after every reconnect, until the returned function is called. */
export function startRegistration(deps: RegistrationDeps): () => void {
  const registrar = new Registrar(deps);
  registrar.start();
  return () => registrar.stop();
}

class Registrar {
  readonly #deps: RegistrationDeps;
  #stopped = false;
  // True while a registration is owed: at start, and after each reconnect.
  #owed = true;
  #wake: (() => void) | undefined;
  #statusIterator: { stop(): void } | undefined;

  constructor(deps: RegistrationDeps) {
    this.#deps = deps;
  }

  start(): void {
    const { nc, log } = this.#deps;
    const status = nc.status();
    // nats.js hands out a queued iterator; stop() detaches it from the connection.
    this.#statusIterator = status as unknown as { stop(): void };
    void (async () => {
      for await (const s of status) {
        if (s.type === "reconnect") this.#again();
      }
    })().catch((err: unknown) => log.debug({ err }, "stopped following the NATS connection for registration"));
    void this.#loop().catch((err: unknown) => log.error({ err }, "task registration stopped unexpectedly; the run API learns the tasks from the next worker"));
  }

  stop(): void {
    this.#stopped = true;
    this.#statusIterator?.stop();
    this.#wake?.();
  }

  #again(): void {
    this.#owed = true;
    this.#wake?.();
  }

  // Resolves after `ms`, or sooner when woken (a reconnect, stop()).
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      // Waiting to register never keeps a process alive on its own.
      const timer = setTimeout(done, ms).unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #loop(): Promise<void> {
    const { log, nc } = this.#deps;
    const backoff = this.#deps.backoffMs ?? registrationBackoffMs;
    let failures = 0;
    while (!this.#stopped && !nc.isClosed()) {
      if (!this.#owed) {
        await this.#pause(2 ** 31 - 1);
        continue;
      }
      this.#owed = false;
      const problem = await this.#tryOnce();
      if (this.#stopped) return;
      // A reconnect during the try owes a fresh one at once; the failure was the old connection's.
      if (problem !== undefined && this.#owed) continue;
      if (problem === undefined) {
        log.info({ tasks: this.#deps.tasks.map((t) => t.name), ...(failures > 0 ? { tries: failures + 1 } : {}) }, "tasks registered with the run API");
        failures = 0;
        continue;
      }
      failures += 1;
      if (failures === 1) {
        log.warn({ reason: problem }, "tasks not registered with the run API yet (retrying in the background; runs are served meanwhile)");
      } else {
        log.debug({ reason: problem, tries: failures }, "task registration: still no answer");
      }
      this.#owed = true;
      await this.#pause(backoff(failures));
    }
  }

  // One round: every request answered ok gives undefined; else why not.
  async #tryOnce(): Promise<string | undefined> {
    for (const registration of this.#requests()) {
      const problem = await this.#request(registration);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  async #request(registration: TaskRegistration): Promise<string | undefined> {
    const { nc } = this.#deps;
    if (nc.isClosed() || nc.isDraining()) return "the NATS connection is closing";
    // A request sent just before a disconnect waits out its timeout even
    // though its reply cannot come; a reconnect (or stop) ends the wait early
    // and the loop sends a fresh one.
    let woken: () => void = () => undefined;
    const interrupted = new Promise<string>((resolve) => (woken = () => resolve("interrupted by a reconnect")));
    const previousWake = this.#wake;
    this.#wake = woken;
    try {
      const reply = nc.request(Nats.registerSubject, JSON.stringify(registration), { timeout: REQUEST_TIMEOUT_MS }).then(
        (msg) => {
          const parsed = TaskRegistrationReplySchema.safeParse(safeJson(msg.string()));
          if (!parsed.success) return "the run API's answer is not a registration reply";
          return parsed.data.ok ? undefined : `the run API refused it: ${parsed.data.error}`;
        },
        (err: unknown) => describeRequestError(err),
      );
      return await Promise.race([reply, interrupted]);
    } finally {
      if (this.#wake === woken) this.#wake = previousWake;
    }
  }

  // The definitions, in requests that each fit a NATS message and the protocol's bound.
  #requests(): TaskRegistration[] {
    const { nc, workerId, tasks } = this.#deps;
    const maxBytes = Math.max(1024, (nc.info?.max_payload ?? 1024 * 1024) - 1024);
    const requests: TaskRegistration[] = [];
    let current: TaskDefinition[] = [];
    let bytes = 0;
    for (const task of tasks) {
      const size = Buffer.byteLength(JSON.stringify(task));
      if (current.length > 0 && (bytes + size > maxBytes || current.length >= MAX_TASKS_PER_REQUEST)) {
        requests.push({ workerId, tasks: current });
        current = [];
        bytes = 0;
      }
      current.push(task);
      bytes += size;
    }
    if (current.length > 0) requests.push({ workerId, tasks: current });
    return requests;
  }
}

function describeRequestError(err: unknown): string {
  const e = err as { name?: string; message?: string; isNoResponders?: () => boolean };
  if (typeof e?.isNoResponders === "function" && e.isNoResponders()) return "no run API is listening on NATS";
  if (e?.name === "NoRespondersError") return "no run API is listening on NATS";
  if (e?.name === "TimeoutError") return `no run API answered within ${REQUEST_TIMEOUT_MS / 1000}s`;
  return String(e?.message ?? err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
