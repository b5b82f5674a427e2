import type { CreateRunBody } from "@offload/sdk/internal";
import type { Submitted } from "./submit.js";

/** Records and dispatches runs, answering them in order ({@link submitRuns}). */
export type SubmitMany = (bodies: readonly CreateRunBody[]) => Promise<Submitted[]>;

interface Waiting {
  body: CreateRunBody;
  resolve(s: Submitted): void;
  reject(err: unknown): void;
}

/** Most runs of single POSTs submitted together. */
export const MAX_GROUP = 500;
/** Groups written at once; more waiting POSTs join the next group. */
export const MAX_IN_FLIGHT = 2;

/**
 * Submits the runs of concurrent single `POST /v1/runs` calls together: one
 * INSERT, the publishes in flight at once, one UPDATE for the lot, rather
 * than two statements per call. In the bench, each statement's round trip to
 * PostgreSQL (a syscall and a wake-up on both sides) was the largest cost of
 * a `delay()` in the run API. A POST that arrives alone goes out on the next
 * turn of the event loop, as before; POSTs arriving while groups are being
 * written wait for one to finish, so a group grows with the load and the
 * extra wait stays below one group's write. A group that fails is tried again
 * one run at a time, so that one run the database refuses fails only its own
 * call: safe, because a submit that throws has recorded nothing (see
 * {@link submitRuns}), so no run is made twice; short of a connection lost
 * between COMMIT and its reply, where only an idempotency key guards a run.
 */
export class SubmitCoalescer {
  readonly #submit: SubmitMany;
  readonly #waiting: Waiting[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(submit: SubmitMany) {
    this.#submit = submit;
  }

  /** Records and dispatches one run, with whatever other runs are submitted meanwhile. */
  submit(body: CreateRunBody): Promise<Submitted> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ body, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#scheduled || this.#inFlight >= MAX_IN_FLIGHT || this.#waiting.length === 0) return;
    this.#scheduled = true;
    // After the current I/O phase, so that requests parsed in the same phase go out together.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#write(this.#waiting.splice(0, MAX_GROUP));
      this.#kick(); // more than a group waiting: the next one goes out too, within MAX_IN_FLIGHT
    });
  }

  async #write(group: Waiting[]): Promise<void> {
    if (group.length === 0) return;
    this.#inFlight++;
    try {
      const submitted = await this.#submit(group.map((w) => w.body));
      group.forEach((w, i) => w.resolve(submitted[i]!));
    } catch (err) {
      if (group.length === 1) group[0]!.reject(err);
      else await Promise.all(group.map((w) => this.#submit([w.body]).then(([s]) => w.resolve(s!), w.reject)));
    } finally {
      this.#inFlight--;
      this.#kick();
    }
  }
}
