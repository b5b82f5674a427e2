import { z } from "zod";

const isoDate = z.iso.datetime({ offset: true });

/** Longest progress message kept: a status line, not a log (the worker cuts longer ones). */
export const MAX_PROGRESS_MESSAGE = 500;

/**
 * How far a running task says it is, from `ctx.progress(...)`: `value` from 0
 * to 1 and, when the task counted, `done` of `total`. Kept on the run while it
 * runs and after it ends (the last report); a report after the end is ignored.
 */
export const RunProgressSchema = z.object({
  value: z.number().min(0).max(1).describe("How far the run is, from 0 (started) to 1 (done)."),
  message: z.string().max(MAX_PROGRESS_MESSAGE).optional().describe("What the task is doing, e.g. `resized 4 of 10`."),
  done: z.number().nonnegative().optional().describe("Units done, when the task counted (then `value` is `done / total`)."),
  total: z.number().positive().optional().describe("Units in all, when the task counted."),
  updatedAt: isoDate.describe("When the task reported it."),
});
export type RunProgress = z.infer<typeof RunProgressSchema>;

/**
 * The `data` of an `event: progress` on a run events stream
 * (`GET /v1/runs/:id/events`, and any stream of many runs): which run, and
 * its progress.
 */
export const RunProgressEventSchema = z.object({
  runId: z.string(),
  progress: RunProgressSchema,
});
export type RunProgressEvent = z.infer<typeof RunProgressEventSchema>;

/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of the code
 * that delayed a run: the worker's span for the run continues that trace.
 */
export const TraceContextSchema = z.object({
  traceparent: z
    .string()
    .regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, "is not a W3C traceparent (version-traceid-spanid-flags, lowercase hex)")
    .describe("The caller's `traceparent` header value."),
  tracestate: z.string().max(512).optional().describe("The caller's `tracestate` header value, if any."),
});
export type TraceContext = z.infer<typeof TraceContextSchema>;
