/**
 * The span a worker runs a task in: `offload.run <task>`, a child of the span
 * `delay()` was called in (the run's trace context), so that one trace shows
 * the request that delayed the run and the run itself. With no OpenTelemetry
 * SDK installed in the worker process the span records nothing, but still
 * carries the caller's trace id (for the log fields).
 */
import { isSpanContextValid, SpanKind, SpanStatusCode, trace, type Context } from "@opentelemetry/api";
import type { RunError, TraceContext } from "../protocol/index.js";
import { parentContextOf } from "./context.js";

/** The instrumentation scope of the SDK's spans. */
export const SDK_TRACER = "@offload/sdk";

/** How a try ended, as the span's `offload.run.outcome` says it. */
export type SpanOutcome = "COMPLETED" | "FAILED" | "AWAITING_RETRY" | "CANCELLED" | "ABANDONED";

/** The span of one try of a run. */
export interface RunSpan {
  /** The context to run the task in: its own spans become children of this one. */
  readonly context: Context;
  /** `trace_id` and `span_id` for the run's log lines, when there is a trace. */
  readonly logFields: { trace_id: string; span_id: string } | undefined;
  /** Ends the span with the try's outcome; a failure's error is recorded as an exception and the status is ERROR. */
  end(outcome: SpanOutcome, failure?: { error: RunError; thrown: unknown }): void;
}

/** Starts the span of a try of a run. */
export function startRunSpan(run: { runId: string; task: string; attempt: number }, workerId: string, traceContext: TraceContext | undefined): RunSpan {
  const parent = parentContextOf(traceContext);
  const span = trace.getTracer(SDK_TRACER).startSpan(
    `offload.run ${run.task}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        "offload.task": run.task,
        "offload.run.id": run.runId,
        "offload.run.attempt": run.attempt,
        "offload.worker.id": workerId,
        "messaging.system": "nats",
        "messaging.operation.type": "process",
      },
    },
    parent,
  );
  const sc = span.spanContext();
  return {
    context: trace.setSpan(parent, span),
    logFields: isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined,
    end(outcome, failure) {
      span.setAttribute("offload.run.outcome", outcome);
      if (failure) {
        const { thrown, error } = failure;
        span.recordException(thrown instanceof Error ? thrown : { name: error.type, message: error.message });
        span.setStatus({ code: SpanStatusCode.ERROR, message: `${error.type}: ${error.message}` });
      }
      span.end();
    },
  };
}
