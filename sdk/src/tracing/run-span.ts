/**
 * The span a worker runs a task in: `offload.run <task>`, a child of the span
 * `delay()` was called in (the run's trace context), so that one trace shows
 * the request that delayed the run and the run itself. In a worker process
 * where OpenTelemetry is not in use there is no span; the run's log lines
 * still name the caller's trace.
 */
import type { RunError, TraceContext } from "../protocol/index.js";
import { otelApi } from "./api.js";
import { parentContextOf, parseTraceparent } from "./context.js";

/** The instrumentation scope of the SDK's spans. */
export const SDK_TRACER = "@offload/sdk";

/** How a try ended, as the span's `offload.run.outcome` says it. */
export type SpanOutcome = "COMPLETED" | "FAILED" | "AWAITING_RETRY" | "CANCELLED" | "ABANDONED";

/** The span of one try of a run. */
export interface RunSpan {
  /** Runs `fn` with the span active: the task's own spans become its children. */
  run<T>(fn: () => T): T;
  /** `trace_id` and `span_id` for the run's log lines, when there is a trace. */
  readonly logFields: { trace_id: string; span_id: string } | undefined;
  /** Ends the span with the try's outcome; a failure's error is recorded as an exception and the status is ERROR. */
  end(outcome: SpanOutcome, failure?: { error: RunError; thrown: unknown }): void;
}

/** Starts the span of a try of a run. */
export async function startRunSpan(run: { runId: string; task: string; attempt: number }, workerId: string, traceContext: TraceContext | undefined): Promise<RunSpan> {
  const api = await otelApi();
  if (!api) {
    const caller = traceContext ? parseTraceparent(traceContext.traceparent) : undefined;
    return { run: (fn) => fn(), logFields: caller ? { trace_id: caller.traceId, span_id: caller.spanId } : undefined, end() {} };
  }
  const parent = parentContextOf(api, traceContext);
  const span = api.trace.getTracer(SDK_TRACER).startSpan(
    `offload.run ${run.task}`,
    {
      kind: api.SpanKind.CONSUMER,
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
  const active = api.trace.setSpan(parent, span);
  const sc = span.spanContext();
  return {
    run: (fn) => api.context.with(active, fn),
    logFields: api.isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : undefined,
    end(outcome, failure) {
      span.setAttribute("offload.run.outcome", outcome);
      if (failure) {
        const { thrown, error } = failure;
        span.recordException(thrown instanceof Error ? thrown : { name: error.type, message: error.message });
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: `${error.type}: ${error.message}` });
      }
      span.end();
    },
  };
}
