/**
 * Concurrent `createRun` calls of one client, sent together. In the bench, 16
 * callers of `delay()` paid one HTTP request each: the request's own cost (a
 * socket write and a wake-up on both sides, fastify's routing, a response)
 * dominated both the app's and the run API's CPU, while `POST /v1/runs/batch`
 * records hundreds of runs for about the price of one. So a call made while
 * a slot is free goes out at once, alone, as before (no added latency at low
 * load); calls made while every slot is busy wait, and go as one batch when a
 * slot frees, so a group grows with the load and its extra wait stays below
 * one request's round trip. The run API does the same one level down
 * (operator/src/dispatch/coalesce.ts), into one statement.
 *
 * Each caller still gets what a lone call would give it: a group holds runs of
 * one task only, so the batch's `warnings` (which name tasks) are every one of
 * its callers' warnings; and a batch refused for something about one entry or
 * one namespace (400, 403, 413: nothing was recorded) is sent again in parts,
 * down to single calls, so that each caller gets its own answer. What concerns
 * the whole request (the API unreachable, 5xx, 429, 401) reaches every caller
 * of the group, as it would have reached each of their own requests.
 */
import { ApiError } from "./errors.js";
import type { CreateRunBody, Run, SubmittedRun } from "./protocol/index.js";

/** The two requests the coalescer sends; bodies come as JSON text, serialized once per call. */
export interface CreateRequests {
  /** `POST /v1/runs` with this body. */
  one(json: string): Promise<SubmittedRun>;
  /** `POST /v1/runs/batch` with this body (`{"runs":[…]}`). */
  many(json: string): Promise<{ runs: Run[]; warnings: string[] }>;
}

/**
 * Create requests in flight at once. With 2, a call made while one request is
 * in flight (frequent at a few hundred calls/s) still goes at once rather than
 * waiting a round trip; busy callers still end up in one group per round (see
 * `#drain`). With 16 callers of `delay()` in the bench, 1 and 2 (with that
 * rule) both send one request per 16 calls; 2 without the rule sent ~2.2x as
 * many, and the bench's processes used 5.1 s of CPU rather than 3.6 s.
 */
export const MAX_IN_FLIGHT = 2;
/** Most runs in one group: a batch much larger answers late for the calls in it, and the load it would carry is rare. */
export const MAX_GROUP_RUNS = 1000;
/**
 * Most bytes of runs in one group: a quarter of the run API's default body
 * limit (OFFLOAD_API_BODY_LIMIT, 1 MiB). A run larger than this goes alone; a
 * batch the API refuses as too large (413: its limit was set lower) halves it,
 * down to {@link MIN_GROUP_BYTES}, for the groups after.
 */
export const MAX_GROUP_BYTES = 256 * 1024;
const MIN_GROUP_BYTES = 8 * 1024;
/** Single calls at once when a refused batch is sent again call by call: enough to be quick, few enough not to trip a rate limit. */
const SINGLES_AT_ONCE = 8;

interface Call {
  task: string;
  json: string;
  bytes: number;
  resolve(run: SubmittedRun): void;
  reject(err: unknown): void;
}

export class SubmitCoalescer {
  readonly #requests: CreateRequests;
  #waiting: Call[] = [];
  /** The runs each request in flight carries. */
  readonly #inFlight: number[] = [];
  #groupBytes = MAX_GROUP_BYTES;

  constructor(requests: CreateRequests) {
    this.#requests = requests;
  }

  /** Records and dispatches one run, together with the calls made meanwhile. */
  submit(body: CreateRunBody): Promise<SubmittedRun> {
    const json = JSON.stringify(body);
    // Nobody waiting (so no call is passed over) and a slot free: at once, alone.
    if (this.#waiting.length === 0 && this.#inFlight.length < MAX_IN_FLIGHT) return this.#hold(1, () => this.#requests.one(json));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ task: body.task, json, bytes: Buffer.byteLength(json), resolve, reject });
    });
  }

  // Runs `send` in a slot. The slot is freed only after the I/O callbacks and promise reactions of this turn of the
  // event loop: callers answered just now make their next calls first, and these join the group that goes next,
  // rather than one of them taking the free slot alone and the rest waiting for it.
  async #hold<T>(runs: number, send: () => Promise<T>): Promise<T> {
    this.#inFlight.push(runs);
    try {
      return await send();
    } finally {
      setImmediate(() => {
        this.#inFlight.splice(this.#inFlight.indexOf(runs), 1);
        this.#drain();
      });
    }
  }

  #drain(): void {
    while (this.#inFlight.length < MAX_IN_FLIGHT && this.#waiting.length > 0) {
      // A few calls waiting while a much larger request is in flight join the group that follows it rather than go
      // in a small request of their own. Else, with callers that each await their call before the next (a worker
      // pool), the callers of a small request keep their own round of small requests going beside the large one.
      if (this.#waiting.length * 2 < Math.max(0, ...this.#inFlight)) return;
      const group = this.#takeGroup();
      void this.#hold(group.length, () => this.#send(group));
    }
  }

  // The first waiting call, and the calls of its task after it while they fit: a group of one task in call order.
  #takeGroup(): Call[] {
    const head = this.#waiting[0]!;
    const group = [head];
    let bytes = head.bytes;
    const rest: Call[] = [];
    for (let i = 1; i < this.#waiting.length; i++) {
      const call = this.#waiting[i]!;
      const fits = call.task === head.task && group.length < MAX_GROUP_RUNS && bytes + call.bytes + 1 <= this.#groupBytes;
      if (fits) {
        group.push(call);
        bytes += call.bytes + 1;
      } else rest.push(call);
    }
    this.#waiting = rest;
    return group;
  }

  // Sends a group and settles its calls; never rejects.
  async #send(group: readonly Call[]): Promise<void> {
    if (group.length === 1) {
      const call = group[0]!;
      await this.#requests.one(call.json).then(call.resolve, call.reject);
      return;
    }
    let answer: { runs: Run[]; warnings: string[] };
    try {
      answer = await this.#requests.many(`{"runs":[${group.map((c) => c.json).join(",")}]}`);
    } catch (err) {
      if (!refusedForAPart(err)) {
        for (const call of group) call.reject(err);
        return;
      }
      if (err.status === 413) this.#groupBytes = Math.max(MIN_GROUP_BYTES, Math.floor(this.#groupBytes / 2));
      await this.#sendInParts(group, err);
      return;
    }
    if (answer.runs.length !== group.length) {
      const err = new ApiError("OFFLOAD_INTERNAL", 202, `the run API answered ${answer.runs.length} runs to a batch of ${group.length}; is it a compatible version?`);
      for (const call of group) call.reject(err);
      return;
    }
    group.forEach((call, i) => {
      const run = answer.runs[i]!;
      call.resolve(answer.warnings.length ? { ...run, warnings: [...answer.warnings] } : run);
    });
  }

  // A batch refused for some of its entries. When the refusal names entries (`runs.3.parameters.tenant`), those go
  // alone (each gets its own refusal) and the others as a batch again (refused again if the refusal did not name
  // every bad entry: it lists at most 100 issues); otherwise every entry goes alone. Safe to send again: the run API
  // records nothing of a batch it refuses.
  async #sendInParts(group: readonly Call[], err: ApiError): Promise<void> {
    const named = err.status === 400 ? entriesNamed(err, group.length) : new Set<number>();
    const alone = named.size > 0 && named.size < group.length ? group.filter((_, i) => named.has(i)) : group;
    const together = alone === group ? [] : group.filter((_, i) => !named.has(i));
    await Promise.all([this.#singles(alone), together.length ? this.#send(together) : undefined]);
  }

  async #singles(calls: readonly Call[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < calls.length) {
        const call = calls[next++]!;
        await this.#requests.one(call.json).then(call.resolve, call.reject);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SINGLES_AT_ONCE, calls.length) }, worker));
  }
}

// 400 (an entry's body or parameters), 403 (no right in one entry's namespace), 413 (the body as a whole too large
// for this API, while each run alone may fit): about a part, so worth sending again in parts.
function refusedForAPart(err: unknown): err is ApiError {
  return err instanceof ApiError && (err.status === 400 || err.status === 403 || err.status === 413);
}

// The entries a refusal's issues point at (`runs.<i>.…`).
function entriesNamed(err: ApiError, size: number): Set<number> {
  const named = new Set<number>();
  for (const issue of err.issues ?? []) {
    const m = /^runs\.(\d+)(?:\.|$)/.exec(issue.path);
    if (m && Number(m[1]) < size) named.add(Number(m[1]));
  }
  return named;
}
