import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { ClientEnvSchema, parseEnv } from "./config.js";
import { HttpTransport } from "./http.js";
import { TokenFile } from "./token-file.js";
import { SubmitCoalescer } from "./submit-coalescer.js";
import { readServerSentEvents } from "./sse.js";
import { ApiError, ApiUnreachableError, RunCancelledError, RunFailedError, RunFinishedError, RunNotRetryableError, ScheduleNotFoundError } from "./errors.js";
import {
  CreateRunsBatchResponseSchema,
  ErrorBodySchema,
  ListSchedulesResponseSchema,
  ListRunsResponseSchema,
  ListTasksResponseSchema,
  MAX_TASK_LIST_WAIT_SECONDS,
  ResultResponseSchema,
  RunLogsResponseSchema,
  RunSchema,
  ScheduleSchema,
  SubmittedRunSchema,
  TaskListSchema,
  isTerminal,
  type CreateRunBody,
  type ListRunsQuery,
  type ListRunsResponse,
  type ResultResponse,
  type PutScheduleBody,
  type Run,
  type Schedule,
  type SubmittedRun,
  type TaskInfo,
  type TaskList,
} from "./protocol/index.js";

/** A run's log, as `GET /v1/runs/:id/logs` answers it: `lines` oldest first; `truncated` once older lines were dropped. */
export type RunLogs = z.infer<typeof RunLogsResponseSchema>;

/** The answer of `POST /v1/runs/batch`: the runs in the order asked, and what the run API could not check about them (empty when nothing). */
export interface SubmittedBatch {
  readonly runs: Run[];
  readonly warnings: string[];
}

/** Options of the schedule calls of {@link OffloadClient}. */
export interface ScheduleCallOptions {
  /** The schedule's namespace. @defaultValue the caller's own (as for runs) */
  namespace?: string;
}

/** Options of {@link OffloadClient}. Each falls back to the environment. */
export interface ClientOptions {
  /** The run API's base URL. @defaultValue `OFFLOAD_API_URL`, else `http://127.0.0.1:8080` */
  apiUrl?: string;
  /**
   * Bearer token for the run API. @defaultValue `OFFLOAD_API_TOKEN`, else the token in the file
   * `OFFLOAD_TOKEN_FILE` (default `/var/run/secrets/offload/token`, if there), re-read when it is rotated, else none
   */
  token?: string;
  /** Per-request timeout in milliseconds (long polls add their wait on top). @defaultValue 30000 */
  requestTimeoutMs?: number;
  /**
   * Whether concurrent {@link OffloadClient.createRun} calls (and so `delay()`s)
   * share requests. A call made while the client's create requests are not busy
   * goes at once, alone; calls made while they are wait for one to finish and go
   * together as one `POST /v1/runs/batch` (runs of one task per batch, at most
   * 1000 runs and 256 KiB). Each call still resolves with its own run and
   * warnings, or rejects with its own error: a batch refused because of one
   * entry is sent again in parts. Turn it off to see one request per call, e.g.
   * in the run API's request log or metrics. @defaultValue true
   */
  coalesce?: boolean;
}

/** A typed client of the run API. Most apps never build one: `task().delay()` uses {@link defaultClient}. */
export class OffloadClient {
  readonly apiUrl: string;
  readonly #token: string | undefined;
  readonly #tokenFile: TokenFile | undefined;
  readonly #timeoutMs: number;
  readonly #http: HttpTransport;
  readonly #creates: SubmitCoalescer | undefined;

  constructor(options: ClientOptions = {}) {
    // An option given in code is not read (nor checked) from the environment.
    const env = parseEnv(
      ClientEnvSchema,
      { ...process.env, ...(options.apiUrl ? { OFFLOAD_API_URL: undefined } : {}), ...(options.token !== undefined ? { OFFLOAD_API_TOKEN: undefined } : {}) },
      "Offload SDK",
    );
    this.apiUrl = (options.apiUrl ?? env.OFFLOAD_API_URL).replace(/\/+$/, "");
    this.#token = options.token ?? env.OFFLOAD_API_TOKEN;
    this.#tokenFile = this.#token === undefined ? TokenFile.open(env.OFFLOAD_TOKEN_FILE) : undefined;
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#http = new HttpTransport(this.apiUrl);
    this.#creates =
      options.coalesce === false
        ? undefined
        : new SubmitCoalescer({
            one: (json) => this.#createOne(json),
            many: async (json) => batchAnswer(await this.#request("POST", "/v1/runs/batch", json)),
          });
  }

  /**
   * `POST /v1/runs`: records and dispatches one run. The answer is the run,
   * with `warnings` when the run API could not check something about it (no
   * worker has registered the task yet). A `parameters` that breaks the input
   * schema a worker registered is refused: an {@link ApiError}
   * `OFFLOAD_INVALID_PARAMETERS` whose `issues` name each field.
   *
   * Calls made while others are in flight share one `POST /v1/runs/batch`
   * (see {@link ClientOptions.coalesce}); each resolves or rejects as it would
   * alone, and once it resolves the run is recorded and readable.
   */
  async createRun(body: CreateRunBody): Promise<SubmittedRun> {
    return this.#creates ? this.#creates.submit(body) : this.#createOne(JSON.stringify(body));
  }

  async #createOne(json: string): Promise<SubmittedRun> {
    return SubmittedRunSchema.parse(await this.#request("POST", "/v1/runs", json));
  }

  /** `POST /v1/runs/batch`: records and dispatches many runs in one call; answers them in order. See {@link createRunsBatch} for the warnings too. */
  async createRuns(runs: CreateRunBody[]): Promise<Run[]> {
    return (await this.createRunsBatch(runs)).runs;
  }

  /**
   * `POST /v1/runs/batch`, with the whole answer: the runs in order and the
   * `warnings` (each said once for the batch). An invalid `parameters`
   * refuses the whole batch (`OFFLOAD_INVALID_PARAMETERS`, `issues` paths like
   * `runs.3.parameters.tenant`); nothing is recorded then.
   */
  async createRunsBatch(runs: CreateRunBody[]): Promise<SubmittedBatch> {
    return batchAnswer(await this.#request("POST", "/v1/runs/batch", JSON.stringify({ runs })));
  }

  /** `GET /v1/runs/:id`. Throws an {@link ApiError} with code `OFFLOAD_RUN_NOT_FOUND` for an unknown id. */
  async getRun(id: string): Promise<Run> {
    return RunSchema.parse(await this.#request("GET", `/v1/runs/${encodeURIComponent(id)}`));
  }

  /** `GET /v1/runs?…`: one page of runs, newest first. */
  async listRuns(query: Partial<ListRunsQuery> = {}): Promise<ListRunsResponse> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const suffix = qs.size ? `?${qs}` : "";
    return ListRunsResponseSchema.parse(await this.#request("GET", `/v1/runs${suffix}`));
  }

  /**
   * `GET /v1/runs/:id/result?wait=`: long-polls up to `waitSeconds`. Resolves
   * with `done: false` if the run is still going; throws {@link RunFailedError}
   * or {@link RunCancelledError} for a run that ended so.
   */
  async getResult(id: string, waitSeconds = 0): Promise<ResultResponse> {
    const wait = Math.max(0, Math.min(60, waitSeconds));
    const path = `/v1/runs/${encodeURIComponent(id)}/result?wait=${wait}`;
    return ResultResponseSchema.parse(await this.#runRequest(id, "GET", path, wait * 1000));
  }

  /**
   * `POST /v1/runs/:id/cancel`. A run not started yet is `CANCELLED` at once; a
   * `RUNNING` one is asked to stop (its worker aborts the run's signal) and is
   * answered as it is now, to become `CANCELLED` shortly. Cancelling a
   * cancelled run is fine. Throws {@link RunFinishedError} for a run that
   * already completed or failed.
   */
  async cancelRun(id: string): Promise<Run> {
    return RunSchema.parse(await this.#runRequest(id, "POST", `/v1/runs/${encodeURIComponent(id)}/cancel`));
  }

  /**
   * `POST /v1/runs/:id/retry`: dispatches a `FAILED` run again under the same
   * id; `attempts` counts on. Throws {@link RunNotRetryableError} for a run in
   * any other state.
   */
  async retryRun(id: string): Promise<Run> {
    return RunSchema.parse(await this.#runRequest(id, "POST", `/v1/runs/${encodeURIComponent(id)}/retry`));
  }

  /** `GET /v1/runs/:id/logs`: what the run logged through `ctx.log`, every try, oldest first. */
  async getLogs(id: string): Promise<RunLogs> {
    return RunLogsResponseSchema.parse(await this.#request("GET", `/v1/runs/${encodeURIComponent(id)}/logs`));
  }

  /**
   * `PUT /v1/schedules/:key`: creates or replaces the schedule `key` (in
   * `body.namespace`, else the caller's own). Resolves with it as stored.
   * `task.schedule(cron, input, { key })` checks the input first and calls this.
   */
  async putSchedule(key: string, body: PutScheduleBody): Promise<Schedule> {
    return ScheduleSchema.parse(await this.#request("PUT", schedulePath(key), JSON.stringify(body)));
  }

  /** `GET /v1/schedules/:key`. Throws {@link ScheduleNotFoundError} when there is none. */
  async getSchedule(key: string, options: ScheduleCallOptions = {}): Promise<Schedule> {
    return ScheduleSchema.parse(await this.#scheduleRequest(key, "GET", schedulePath(key, options)));
  }

  /** `GET /v1/schedules`: the schedules of a namespace. */
  async listSchedules(options: ScheduleCallOptions = {}): Promise<Schedule[]> {
    const qs = options.namespace !== undefined ? `?${new URLSearchParams({ namespace: options.namespace })}` : "";
    return ListSchedulesResponseSchema.parse(await this.#request("GET", `/v1/schedules${qs}`)).schedules;
  }

  /** `DELETE /v1/schedules/:key`: no run starts from it any more (runs it started go on). Throws {@link ScheduleNotFoundError} when there is none. */
  async deleteSchedule(key: string, options: ScheduleCallOptions = {}): Promise<void> {
    await this.#scheduleRequest(key, "DELETE", schedulePath(key, options));
  }

  /** `GET /v1/tasks`: the tasks the run API knows of, with their backlog and the workers serving them. */
  async listTasks(): Promise<TaskInfo[]> {
    return ListTasksResponseSchema.parse(await this.#request("GET", "/v1/tasks")).tasks;
  }

  /**
   * `GET /v1/tasks?since=&wait=`: the task list and the `version` of its load.
   * With `since` (an earlier answer's version) it long-polls: it answers at
   * once if the load is another, else when it changes, or after `waitSeconds`
   * (at most 60) with the same version. `signal` ends the wait early (the call
   * then rejects with the signal's reason). The controller's task watch calls
   * it in a loop.
   */
  async pollTasks(options: { since?: string; waitSeconds?: number; signal?: AbortSignal } = {}): Promise<TaskList> {
    const wait = Math.max(0, Math.min(MAX_TASK_LIST_WAIT_SECONDS, options.waitSeconds ?? 0));
    const qs = new URLSearchParams({ wait: String(wait), ...(options.since !== undefined ? { since: options.since } : {}) });
    // fetch, not the keep-alive transport: a wait must be abortable when the caller stops.
    const signals = [AbortSignal.timeout(this.#timeoutMs + wait * 1000), ...(options.signal ? [options.signal] : [])];
    let res: { status: number; ok: boolean; text: string };
    try {
      const r = await fetch(`${this.apiUrl}/v1/tasks?${qs}`, { headers: this.#headers("application/json"), signal: AbortSignal.any(signals) });
      res = { status: r.status, ok: r.ok, text: await r.text() };
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new ApiUnreachableError(this.apiUrl, err);
    }
    const text = res.text;
    if (!res.ok) throw this.#errorOf(res.status, text);
    return TaskListSchema.parse(safeJson(text));
  }

  /**
   * `GET /v1/runs/:id/events`: yields the run as it is, then again after each
   * change of state (or new attempt), and ends after a terminal state. If the
   * stream drops before that (an API restart), it reconnects, never yielding
   * the same state and attempt twice. Stop early with `signal`, or by leaving
   * the `for await` loop.
   */
  async *watchRun(id: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Run> {
    let last: Run | undefined;
    let failures = 0;
    while (!options.signal?.aborted) {
      let res: Response;
      try {
        res = await fetch(`${this.apiUrl}/v1/runs/${encodeURIComponent(id)}/events`, {
          headers: this.#headers("text/event-stream"),
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        if (options.signal?.aborted) return;
        // The API may be restarting: a few tries, then say it is unreachable.
        if (++failures > 5) throw new ApiUnreachableError(this.apiUrl, err);
        await sleep(500 * failures);
        continue;
      }
      if (!res.ok || !res.body) throw this.#errorOf(res.status, await res.text());
      failures = 0;
      try {
        for await (const e of readServerSentEvents(res.body)) {
          if (e.event !== "state") continue;
          const run = RunSchema.parse(JSON.parse(e.data));
          if (last && last.state === run.state && last.attempts === run.attempts) continue;
          last = run;
          yield run;
          if (isTerminal(run.state)) return;
        }
      } catch (err) {
        if (options.signal?.aborted) return;
        if (!(err instanceof TypeError)) throw err; // a dropped connection surfaces as a TypeError: reconnect
      }
    }
  }

  // A call about one run: the API's answers about the run's own state become
  // the typed errors callers catch (RunFailedError, RunFinishedError, …).
  async #runRequest(id: string, method: string, path: string, extraTimeoutMs = 0): Promise<unknown> {
    try {
      return await this.#request(method, path, undefined, extraTimeoutMs);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      switch (err.code) {
        case "OFFLOAD_RUN_FAILED": {
          const body = (err as ApiError & { body?: z.infer<typeof ErrorBodySchema> }).body;
          throw new RunFailedError(id, body?.error ?? { type: "Error", message: err.message });
        }
        case "OFFLOAD_RUN_CANCELLED":
          throw new RunCancelledError(id);
        case "OFFLOAD_RUN_FINISHED":
          throw new RunFinishedError(id, err.message);
        case "OFFLOAD_RUN_NOT_RETRYABLE":
          throw new RunNotRetryableError(id, err.message);
        default:
          throw err;
      }
    }
  }

  // A call about one schedule: its 404 becomes the typed error callers catch.
  async #scheduleRequest(key: string, method: string, path: string): Promise<unknown> {
    try {
      return await this.#request(method, path);
    } catch (err) {
      if (err instanceof ApiError && err.code === "OFFLOAD_SCHEDULE_NOT_FOUND") throw new ScheduleNotFoundError(key, err.message);
      throw err;
    }
  }

  #headers(accept: string): Record<string, string> {
    const token = this.#token ?? this.#tokenFile?.token;
    return { accept, ...(token ? { authorization: `Bearer ${token}` } : {}) };
  }

  // `json`: the body, already serialized (the create calls serialize each run once, whether it goes alone or in a batch).
  async #request(method: string, path: string, json?: string, extraTimeoutMs = 0): Promise<unknown> {
    const send = async (): Promise<{ status: number; text: string }> => {
      const headers = this.#headers("application/json");
      if (json !== undefined) headers["content-type"] = "application/json";
      try {
        return await this.#http.send(method, path, headers, json, this.#timeoutMs + extraTimeoutMs);
      } catch (err) {
        throw new ApiUnreachableError(this.apiUrl, err);
      }
    };
    let res = await send();
    // A 401 may mean the kubelet rotated the token file since it was last looked at: read it now, and if it
    // holds a new token, ask once more (a refused request changed nothing, so it is safe to send again).
    if (res.status === 401 && this.#tokenFile?.refresh()) res = await send();
    if (res.status >= 200 && res.status < 300) return res.text ? safeJson(res.text) : undefined;
    throw this.#errorOf(res.status, res.text);
  }

  // The typed error for an answer of the run API that is not 2xx.
  #errorOf(status: number, text: string): ApiError {
    const parsed = ErrorBodySchema.safeParse(text ? safeJson(text) : undefined);
    if (!parsed.success) return new ApiError("OFFLOAD_INTERNAL", status, `run API answered ${status}: ${text.slice(0, 200)}`);
    const e = new ApiError(parsed.data.code, status, parsed.data.message, parsed.data.issues);
    Object.defineProperty(e, "body", { value: parsed.data, enumerable: false });
    return e;
  }
}

function schedulePath(key: string, options: ScheduleCallOptions = {}): string {
  const qs = options.namespace !== undefined ? `?${new URLSearchParams({ namespace: options.namespace })}` : "";
  return `/v1/schedules/${encodeURIComponent(key)}${qs}`;
}

function batchAnswer(answer: unknown): SubmittedBatch {
  const parsed = CreateRunsBatchResponseSchema.parse(answer);
  return { runs: parsed.runs, warnings: parsed.warnings ?? [] };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

let shared: OffloadClient | undefined;
/** The client `delay()` uses unless a task is given one: built from the environment on first use. */
export function defaultClient(): OffloadClient {
  shared ??= new OffloadClient();
  return shared;
}
/** Replaces the client `delay()` uses (e.g. in tests, or to set the URL in code rather than the environment). */
export function setDefaultClient(client: OffloadClient | undefined): void {
  shared = client;
}
