/**
 * The dashboard's calls to the run API, from the same origin. A token the
 * user gives is kept in sessionStorage: for this tab only, gone when it
 * closes. Event streams are read with fetch, not EventSource, because
 * EventSource cannot send the Authorization header (and a token in a URL
 * would end up in logs and history).
 */
import type { ListRunsResponse, Run, RunLogLine, Schedule, TaskInfo } from "../../sdk/src/protocol/index.js";
import { readServerSentEvents } from "../../sdk/src/sse.js";
import type { Overview } from "../../operator/src/api/routes/overview.js";

export type { ListRunsResponse, Run, RunLogLine, Schedule, TaskInfo, Overview };

const TOKEN_KEY = "offload.apiToken";

/** An answer of the API that is not 2xx, with its `OFFLOAD_*` code. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiProblem";
  }
}

type Listener = () => void;
const tokenNeeded = new Set<Listener>();

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set(value: string): void {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  /** Calls `listener` whenever a call was refused for want of a (right) token. */
  onNeeded(listener: Listener): () => void {
    tokenNeeded.add(listener);
    return () => void tokenNeeded.delete(listener);
  },
};

function headers(accept: string): Record<string, string> {
  const t = token.get();
  return { accept, ...(t ? { authorization: `Bearer ${t}` } : {}) };
}

async function problemOf(res: Response): Promise<ApiProblem> {
  const text = await res.text();
  let code = "OFFLOAD_INTERNAL";
  let message = `the run API answered ${res.status}`;
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    if (body.code) code = body.code;
    if (body.message) message = body.message;
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401) for (const l of tokenNeeded) l();
  return new ApiProblem(res.status, code, message);
}

async function call<T>(method: string, path: string): Promise<T> {
  const res = await fetch(path, { method, headers: headers("application/json") });
  if (!res.ok) throw await problemOf(res);
  return (await res.json()) as T;
}

/** The filters of the runs list. */
export interface RunFilter {
  task?: string | undefined;
  state?: string | undefined;
}

export const api = {
  overview: (windowSeconds = 3600, buckets = 30) => call<Overview>("GET", `/v1/overview?windowSeconds=${windowSeconds}&buckets=${buckets}`),
  tasks: () => call<{ tasks: TaskInfo[] }>("GET", "/v1/tasks").then((r) => r.tasks),
  runs(filter: RunFilter, limit: number, cursor?: string): Promise<ListRunsResponse> {
    const qs = new URLSearchParams({ limit: String(limit) });
    if (filter.task) qs.set("task", filter.task);
    if (filter.state) qs.set("state", filter.state);
    if (cursor) qs.set("cursor", cursor);
    return call("GET", `/v1/runs?${qs}`);
  },
  run: (id: string) => call<Run>("GET", `/v1/runs/${encodeURIComponent(id)}`),
  logs: (id: string) => call<{ lines: RunLogLine[]; truncated: boolean }>("GET", `/v1/runs/${encodeURIComponent(id)}/logs`),
  cancel: (id: string) => call<Run>("POST", `/v1/runs/${encodeURIComponent(id)}/cancel`),
  retry: (id: string) => call<Run>("POST", `/v1/runs/${encodeURIComponent(id)}/retry`),
  schedules: () => call<{ schedules: Schedule[] }>("GET", "/v1/schedules").then((r) => r.schedules),
};

/**
 * Reads the server-sent events at `path` and hands each to `onEvent`, until
 * `signal` aborts. Reconnects after a dropped stream (an API restart) with a
 * growing pause; `onOpen` is called on each (re)connection, so the caller can
 * re-read what it may have missed meanwhile.
 */
export async function streamEvents(
  path: string,
  onEvent: (event: string, data: unknown) => void,
  signal: AbortSignal,
  onOpen: () => void = () => undefined,
): Promise<void> {
  let pause = 500;
  while (!signal.aborted) {
    try {
      const res = await fetch(path, { headers: headers("text/event-stream"), signal });
      if (!res.ok || !res.body) {
        const problem = await problemOf(res);
        // A refused token or a missing run will not get better by asking again.
        if (res.status === 401 || res.status === 403 || res.status === 404) throw problem;
      } else {
        pause = 500;
        onOpen();
        for await (const e of readServerSentEvents(res.body)) onEvent(e.event, JSON.parse(e.data));
        // The stream ended on purpose (a run's stream ends with the run).
        if (!path.startsWith("/v1/events")) return;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiProblem) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 10_000);
  }
}
