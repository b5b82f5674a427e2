import type { NatsConnection } from "@nats-io/transport-node";
import { HeartbeatSchema, Nats, type Heartbeat } from "@offload/sdk/internal";

/** How long a worker counts as serving a task after its last heartbeat. */
export const WORKER_FRESH_MS = 15_000;

/** A worker serving a task, as `GET /v1/tasks` shows it. */
export interface WorkerSighting {
  workerId: string;
  concurrency: number;
  inFlight: number;
  lastSeenAt: string;
}

/**
 * The workers this replica has heard from, per task. Every replica listens
 * to every heartbeat (core NATS, nothing stored), so each can answer alone;
 * a worker drops out once silent for {@link WORKER_FRESH_MS}.
 */
export class WorkerDirectory {
  readonly #byTask = new Map<string, Map<string, { beat: Heartbeat; seenAt: number }>>();
  readonly #now: () => number;
  readonly #listeners = new Set<() => void>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Calls `listener` after each heartbeat that changes a worker's load (a new
   * worker, or another in-flight count or concurrency), not after one that only
   * says it is still there; until the returned function is called.
   */
  onLoadChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records one heartbeat (malformed ones are ignored: workers of other versions may say more or less). */
  record(data: unknown): void {
    const beat = HeartbeatSchema.safeParse(data);
    if (!beat.success) return;
    const workers = this.#byTask.get(beat.data.task) ?? new Map();
    const before = workers.get(beat.data.workerId)?.beat;
    workers.set(beat.data.workerId, { beat: beat.data, seenAt: this.#now() });
    this.#byTask.set(beat.data.task, workers);
    if (before?.inFlight === beat.data.inFlight && before.concurrency === beat.data.concurrency) return;
    for (const listener of this.#listeners) listener();
  }

  /** The workers heard from lately, per task, oldest entries forgotten on the way. */
  current(): Map<string, WorkerSighting[]> {
    const cutoff = this.#now() - WORKER_FRESH_MS;
    const out = new Map<string, WorkerSighting[]>();
    for (const [task, workers] of this.#byTask) {
      for (const [id, w] of workers) if (w.seenAt < cutoff) workers.delete(id);
      if (workers.size === 0) {
        this.#byTask.delete(task);
        continue;
      }
      out.set(
        task,
        [...workers.values()].map(({ beat, seenAt }) => ({
          workerId: beat.workerId,
          concurrency: beat.concurrency,
          inFlight: beat.inFlight,
          lastSeenAt: new Date(seenAt).toISOString(),
        })),
      );
    }
    return out;
  }

  /** Subscribes to every task's heartbeats; `stop()` unsubscribes. */
  listen(nc: NatsConnection): { stop(): void } {
    const sub = nc.subscribe(Nats.heartbeatWildcard, {
      callback: (err, m) => {
        if (err) return;
        try {
          this.record(m.json());
        } catch {
          // not JSON: not a heartbeat
        }
      },
    });
    return { stop: () => sub.unsubscribe() };
  }
}
