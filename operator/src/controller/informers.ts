import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { realClock, type Clock } from "./queue.js";

export type InformerEvent = "add" | "update" | "delete";

/** Options of {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** For logs. */
  name: string;
  kc: KubeConfig;
  /** The list/watch path, e.g. `/apis/apps/v1/deployments`. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onEvent: (event: InformerEvent, obj: T) => void;
  log: Logger;
  /** First delay before restarting after an error. @defaultValue 500 */
  restartBaseMs?: number;
  /** Largest delay between restarts. @defaultValue 30000 */
  restartMaxMs?: number;
  clock?: Clock;
}

/**
 * `makeInformer` from `@kubernetes/client-node` plus what it leaves to the
 * caller: it relists by itself on `410 Gone`, but on any other error (the API
 * server went away, a list failed) it stops; this restarts it with
 * exponential backoff until it works again.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #informer;
  readonly #o: ResilientInformerOptions<T>;
  readonly #clock: Clock;
  #stopped = true;
  #failures = 0;
  #timer: { cancel(): void } | undefined;
  #synced = false;

  constructor(o: ResilientInformerOptions<T>) {
    this.#o = o;
    this.#clock = o.clock ?? realClock;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const l = await o.list();
      this.#synced = true;
      this.#failures = 0;
      return l;
    };
    this.#informer = makeInformer<T>(o.kc, o.path, list, o.labelSelector);
    this.#informer.on("add", (obj) => o.onEvent("add", obj));
    this.#informer.on("update", (obj) => o.onEvent("update", obj));
    this.#informer.on("delete", (obj) => o.onEvent("delete", obj));
    this.#informer.on("error", (err: unknown) => this.#onError(err));
  }

  /** Starts listing and watching; resolves after the first attempt (see {@link synced}). */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#informer.start();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#informer.stop();
  }

  /** Whether a list has succeeded since start, so the cache is filled. */
  get synced(): boolean {
    return this.#synced;
  }

  list(): readonly T[] {
    return this.#informer.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  #onError(err: unknown): void {
    if (this.#stopped) return;
    const delay = Math.min(this.#o.restartMaxMs ?? 30_000, (this.#o.restartBaseMs ?? 500) * 2 ** Math.min(this.#failures, 20));
    this.#failures++;
    this.#o.log.warn({ informer: this.#o.name, err: String((err as Error)?.message ?? err), retryInMs: delay }, "list/watch failed; restarting");
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.#informer.start().catch((e: unknown) => this.#onError(e));
    }, delay);
  }
}
