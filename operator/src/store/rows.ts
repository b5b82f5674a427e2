import type { Json, Run, RunError, RunProgress, RunState, TraceContext, WaitingFor } from "@offload/sdk/internal";

/** The namespace of a run recorded without one (and of every run recorded before namespaces existed). */
export const DEFAULT_NAMESPACE = "default";

/** A row of `runs` as both drivers return it. */
export interface RunRow {
  id: string;
  task: string;
  state: RunState;
  parameters: Json | null;
  attempts: number;
  created_at: Date | string;
  scheduled_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  updated_at: Date | string;
  result: Json | null;
  result_ref: string | null;
  error: RunError | null;
  cache_key: string | null;
  cached: boolean;
  idempotency_key: string | null;
  worker_id: string | null;
  dispatch: number;
  timeout_seconds: number | null;
  cache_expires_in_seconds: number | null;
  namespace: string;
  progress: RunProgress | null;
  trace_context: TraceContext | null;
  priority: number;
  concurrency_key: string | null;
  rate_limit_key: string | null;
  waiting_for: WaitingFor | null;
}

/** A recorded run plus what dispatching it needs. */
export interface StoredRun {
  run: Run;
  /** Which dispatch of the run the next publish is (part of the message id). */
  dispatch: number;
  /** Per-run timeout for the task message, or null for the task's own. */
  timeoutSeconds: number | null;
}

/** A timestamp column as ISO 8601 (pg gives Dates, PGlite may give strings). */
export const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
/**
 * SQL that gives a timestamptz column as the text {@link iso} would make of it (UTC, milliseconds cut, not rounded,
 * as both drivers' Dates are): for the hot paths, where parsing a Date per row only to print it again cost more than
 * PostgreSQL's to_char. Years stay within 1..9999 here (the API's timestamps have four-digit years).
 */
export const isoText = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

/** The API's view of a row. */
export function toStored(r: RunRow): StoredRun {
  return {
    dispatch: r.dispatch,
    timeoutSeconds: r.timeout_seconds,
    run: {
      id: r.id,
      task: r.task,
      state: r.state,
      parameters: r.parameters ?? null,
      attempts: r.attempts,
      createdAt: iso(r.created_at),
      scheduledAt: iso(r.scheduled_at),
      startedAt: isoOrNull(r.started_at),
      finishedAt: isoOrNull(r.finished_at),
      updatedAt: iso(r.updated_at),
      result: r.result ?? null,
      resultRef: r.result_ref,
      error: r.error,
      cacheKey: r.cache_key,
      cached: r.cached,
      idempotencyKey: r.idempotency_key,
      workerId: r.worker_id,
      namespace: r.namespace,
      priority: r.priority,
      concurrencyKey: r.concurrency_key,
      rateLimitKey: r.rate_limit_key,
      // Only a run still held back says why; the column may keep the last reason after it left.
      waitingFor: r.state === "PENDING" ? r.waiting_for : null,
      // Absent rather than null: runs from before progress and traces existed look the same as runs without them.
      ...(r.progress ? { progress: r.progress } : {}),
      ...(r.trace_context ? { traceContext: r.trace_context } : {}),
    },
  };
}

/** JSON for a `$n::jsonb` parameter (both drivers agree on strings). */
export const json = (v: Json | undefined): string | null => (v === undefined ? null : JSON.stringify(v));

/** `$from, $from+1, …` for `n` parameters. */
export const placeholders = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `$${from + i}`).join(", ");

/** A SQL list of state literals. States come from the protocol's fixed enum; checked anyway before they meet SQL. */
export const stateList = (states: readonly RunState[]): string =>
  states
    .map((s) => {
      if (!/^[A-Z_]+$/.test(s)) throw new Error(`bad state ${s}`);
      return `'${s}'`;
    })
    .join(", ");

/**
 * Rows per multi-row statement: a few parameters each (findCacheHits: 3) stays far below PostgreSQL's 65535, and
 * recordRuns, which sends its rows as one JSON parameter, keeps each statement within a bounded size.
 */
export const CHUNK = 2000;
