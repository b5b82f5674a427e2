import { setTimeout as sleep } from "node:timers/promises";

/** Where to send a submission. */
export interface Target {
  readonly name: string;
  readonly url: string;
}

/** One run the suite asked for: what it must add up to, and the key it was asked with. */
interface Asked {
  a: number;
  b: number;
  key?: string;
}

/** A submission's answer time, and when it was sent (ms since the load began). */
export interface Timed {
  sentAt: number;
  ms: number;
  ok: boolean;
}

/**
 * What the apps were told: every run answered 2xx (accepted) with its
 * expected sum, the run each idempotency key was answered with, and how each
 * call went. The assertions of the suite are checks of the system against it.
 */
export class Ledger {
  /** Accepted run id → the sum its result must hold. */
  readonly accepted = new Map<string, number>();
  /** Idempotency key → the run id of its first 2xx answer. */
  readonly keys = new Map<string, string>();
  /** Keys answered with a run other than the key's first one: each a broken promise of idempotency. */
  readonly keyConflicts: string[] = [];
  /** Repeats of an accepted key that were answered 2xx (each must be the key's run). */
  keyRepeats = 0;
  /** Answers by status (`net` for no answer: the replica was down or died mid-call). */
  readonly statuses = new Map<string, number>();
  readonly calls: Timed[] = [];
  readonly started = performance.now();

  count(status: string): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  accept(id: string, asked: Asked): void {
    this.accepted.set(id, asked.a + asked.b);
    if (asked.key === undefined) return;
    const first = this.keys.get(asked.key);
    if (first === undefined) this.keys.set(asked.key, id);
    else if (first !== id) this.keyConflicts.push(`${asked.key}: answered ${first}, then ${id}`);
  }
}

interface RunAnswer {
  id: string;
}

/**
 * Apps submitting runs of `chaos-add` through every target in turn, single
 * and batched, with and without idempotency keys, repeating keys already
 * answered. A keyed submission that got no 2xx is sent again (through the next
 * target), as an app holding a key would, until it is accepted.
 */
export class Load {
  readonly ledger = new Ledger();
  #next = 0;
  #stop = false;
  /** Keys whose submission got no 2xx yet, with what they ask for. */
  readonly #unanswered: Asked[] = [];
  readonly #running: Promise<void>[] = [];

  constructor(
    private readonly targets: readonly Target[],
    private readonly options: { submitters: number; pauseMs: number; batchSize: number; workMs: number },
  ) {}

  start(): void {
    for (let s = 0; s < this.options.submitters; s++) this.#running.push(this.#submitter(s));
  }

  /** Stops submitting, and leaves the unanswered keyed runs be (after a failure, when their answers no longer matter). */
  async abort(): Promise<void> {
    this.#stop = true;
    this.#unanswered.length = 0;
    await Promise.all(this.#running);
  }

  /**
   * Stops submitting, then keeps sending the still-unanswered keyed runs
   * (for up to `drainMs`) until each is accepted. Answers how many never were.
   */
  async stop(drainMs = 60_000): Promise<number> {
    this.#stop = true;
    await Promise.all(this.#running);
    const deadline = performance.now() + drainMs;
    for (let i = 0; this.#unanswered.length > 0 && performance.now() < deadline; i++) {
      const asked = this.#unanswered.shift()!;
      await this.#single(this.targets[i % this.targets.length]!, asked);
      await sleep(50);
    }
    return this.#unanswered.length;
  }

  #fresh(key: boolean): Asked {
    const n = this.#next++;
    return { a: n, b: 1_000_000 + n * 3, ...(key ? { key: `chaos-${n}` } : {}) };
  }

  // An accepted key, to ask again with (the same parameters, as an app retrying would).
  #repeat(i: number): Asked | undefined {
    const keys = [...this.ledger.keys.keys()];
    if (keys.length === 0) return undefined;
    const key = keys[(i * 7919) % keys.length]!;
    const n = Number(key.slice("chaos-".length));
    return { a: n, b: 1_000_000 + n * 3, key };
  }

  async #submitter(s: number): Promise<void> {
    for (let i = s; !this.#stop; i += this.options.submitters) {
      const target = this.targets[i % this.targets.length]!;
      const retry = this.#unanswered.shift();
      if (retry) await this.#single(target, retry);
      switch (i % 5) {
        case 0:
          await this.#single(target, this.#fresh(false));
          break;
        case 1:
          await this.#single(target, this.#fresh(true));
          break;
        case 2:
          await this.#single(target, this.#repeat(i) ?? this.#fresh(true));
          break;
        case 3:
          await this.#batch(target, Array.from({ length: this.options.batchSize }, () => this.#fresh(false)));
          break;
        default: {
          // New keys and, once there are some, two repeats of keys already answered (distinct from each other).
          const runs = Array.from({ length: this.options.batchSize - 2 }, () => this.#fresh(true));
          const r1 = this.#repeat(i);
          const r2 = this.#repeat(i + 1);
          if (r1) runs.push(r1);
          if (r2 && r2.key !== r1?.key) runs.push(r2);
          await this.#batch(target, runs);
        }
      }
      await sleep(this.options.pauseMs);
    }
  }

  #body(asked: Asked): unknown {
    return { task: "chaos-add", parameters: { a: asked.a, b: asked.b, ms: this.options.workMs }, ...(asked.key ? { idempotencyKey: asked.key } : {}) };
  }

  async #single(target: Target, asked: Asked): Promise<void> {
    const repeat = asked.key !== undefined && this.ledger.keys.has(asked.key);
    const answer = await this.#post<RunAnswer>(target, "/v1/runs", this.#body(asked));
    if (!answer) {
      if (asked.key !== undefined && !repeat) this.#unanswered.push(asked);
      return;
    }
    if (repeat) this.ledger.keyRepeats++;
    this.ledger.accept(answer.id, asked);
  }

  async #batch(target: Target, runs: Asked[]): Promise<void> {
    const answer = await this.#post<{ runs: RunAnswer[] }>(target, "/v1/runs/batch", { runs: runs.map((r) => this.#body(r)) });
    if (!answer) {
      for (const r of runs) if (r.key !== undefined && !this.ledger.keys.has(r.key)) this.#unanswered.push(r);
      return;
    }
    runs.forEach((asked, i) => {
      if (asked.key !== undefined && this.ledger.keys.has(asked.key)) this.ledger.keyRepeats++;
      this.ledger.accept(answer.runs[i]!.id, asked);
    });
  }

  /** The parsed 2xx answer, or undefined for anything else (counted by status). */
  async #post<T>(target: Target, path: string, body: unknown): Promise<T | undefined> {
    const sentAt = performance.now();
    let status = "net";
    let parsed: T | undefined;
    try {
      const res = await fetch(target.url + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      if (res.ok) parsed = JSON.parse(text) as T;
      status = res.ok ? String(res.status) : `${res.status} ${errorCode(text)}`;
    } catch {
      // No answer: the replica was down, or died with the call in flight.
    }
    this.ledger.count(status);
    this.ledger.calls.push({ sentAt: sentAt - this.ledger.started, ms: performance.now() - sentAt, ok: parsed !== undefined });
    return parsed;
  }
}

/** The `code` of an error body, or what the body was instead. */
function errorCode(text: string): string {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === "string" ? code : "(no code)";
  } catch {
    return "(not JSON)";
  }
}
