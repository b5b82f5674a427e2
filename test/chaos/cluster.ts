import { API_BIN, WORKER_BIN, freePort, startProcess, untilReady, waitFor, type Child } from "../support/index.js";

/** A process that exited without the campaign asking it to. */
export interface UnexpectedExit {
  name: string;
  code: number | string;
  /** The end of what it printed: the reason it died. */
  output: string;
}

/**
 * One run-API replica on a fixed port, so that clients keep their URL across
 * its restarts. The chaos kills it on purpose; any other exit is recorded
 * (that is what the suite looks for) and the replica is brought back, so the
 * campaign runs to its end and reports every figure.
 */
export class ApiReplica {
  readonly url: string;
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** How many times it was SIGKILLed on purpose. */
  kills = 0;
  #child: Child | undefined;
  #starts = 0;
  #expectExit = false;
  #stopped = false;

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(name: string, env: Record<string, string>): Promise<ApiReplica> {
    const replica = new ApiReplica(name, await freePort(), env);
    await replica.#launch();
    return replica;
  }

  async #launch(): Promise<void> {
    const child = startProcess(`${this.name}#${this.#starts++}`, process.execPath, [API_BIN], {
      ...this.env,
      OFFLOAD_API_PORT: String(this.port),
      OFFLOAD_API_HOST: "127.0.0.1",
    });
    this.#child = child;
    this.#expectExit = false;
    let ready = false;
    // A start that fails is the launcher's to handle; only a replica that was serving can die "on its own".
    void child.exited.then((code) => {
      if (!ready || this.#child !== child || this.#expectExit || this.#stopped) return;
      this.unexpectedExits.push({ name: child.name, code, output: child.output().slice(-3000) });
      void this.#relaunchSoon();
    });
    await untilReady(child, `${this.name} to be ready`, `${this.url}/readyz`, 60_000);
    ready = true;
  }

  // A replica that died on its own may find a dependency still away: keep trying, as a Deployment would.
  async #relaunchSoon(): Promise<void> {
    await waitFor(
      `${this.name} to come back after dying`,
      async () => {
        if (this.#stopped) return true;
        await this.#launch();
        return true;
      },
      120_000,
      500,
    ).catch(() => undefined);
  }

  /** SIGKILL (as the OOM killer or a node failure would), then start it again on the same port. */
  async killAndRestart(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#expectExit = true;
    this.kills++;
    child.kill("SIGKILL");
    await child.exited;
    await this.#launch();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#child?.stop(5000);
  }
}

/**
 * Worker processes serving the chaos fixtures: `size` of them, one SIGKILLed
 * and replaced at a time.
 */
export class WorkerPool {
  readonly unexpectedExits: UnexpectedExit[] = [];
  kills = 0;
  readonly #slots: (Child | undefined)[];
  readonly #expected = new Set<Child>();
  readonly #launching = new Set<Promise<unknown>>();
  readonly #ready = new WeakSet<Child>();
  #starts = 0;
  #stopped = false;

  constructor(
    size: number,
    private readonly args: string[],
    private readonly env: Record<string, string>,
  ) {
    this.#slots = Array.from({ length: size }, () => undefined);
  }

  async start(): Promise<void> {
    await Promise.all(this.#slots.map((_, i) => this.#launch(i)));
  }

  async #launch(slot: number): Promise<void> {
    const port = await freePort();
    const child = startProcess(`offload-worker#${this.#starts++}`, process.execPath, [WORKER_BIN, ...this.args], {
      ...this.env,
      OFFLOAD_WORKER_PORT: String(port),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
    });
    this.#slots[slot] = child;
    void child.exited.then((code) => {
      if (!this.#ready.has(child) || this.#expected.has(child) || this.#stopped) return;
      this.unexpectedExits.push({ name: child.name, code, output: child.output().slice(-3000) });
    });
    await untilReady(child, `${child.name} to be ready`, `http://127.0.0.1:${port}/readyz`, 60_000);
    this.#ready.add(child);
  }

  /**
   * SIGKILLs the worker in `slot` (modulo the pool's size) and starts its
   * replacement without waiting for it, so kills keep their pace however slow
   * a start is; {@link settle} waits for the replacements.
   */
  async killAndReplace(slot: number): Promise<void> {
    const i = slot % this.#slots.length;
    const child = this.#slots[i];
    // A replacement still starting is left to start: one process per slot.
    if (!child || !this.#ready.has(child)) return;
    this.#expected.add(child);
    this.kills++;
    child.kill("SIGKILL");
    await child.exited;
    // A start may meet nats-server away: try again, as a Deployment would.
    const launching = waitFor(`worker slot ${i} to be replaced`, async () => this.#stopped || (await this.#launch(i), true), 120_000, 500);
    this.#launching.add(launching);
    void launching.finally(() => this.#launching.delete(launching)).catch(() => undefined);
  }

  /** Waits until every replacement started so far is ready (or failed for good). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#launching]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.settle();
    await Promise.all(this.#slots.map((c) => c?.stop(5000)));
  }
}
