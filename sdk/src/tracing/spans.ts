/**
 * Spans for Offload's own processes (the run API's submit and dispatch). In a
 * process where OpenTelemetry is not in use (see startTracing) `fn` simply runs.
 */
import type { Attributes } from "@opentelemetry/api";
import type { TraceContext } from "../protocol/index.js";
import { otelApi } from "./api.js";
import { parentContextOf } from "./context.js";

/** What a traced function may add to its span. */
export interface SpanHandle {
  setAttributes(attributes: Attributes): void;
}

/** Options of {@link inSpan}. */
export interface InSpanOptions {
  kind: "server" | "producer" | "consumer" | "internal";
  attributes?: Attributes;
  /** The parent when no span is active: a run's recorded trace context (e.g. for a dispatch by the sweeper). */
  parent?: TraceContext | undefined;
}

const UNTRACED: SpanHandle = { setAttributes() {} };

/**
 * Runs `fn` inside a new span of the tracer `scope`, as the active span (so
 * spans started inside become its children). A throw is recorded on the span
 * (status ERROR) and rethrown.
 */
export async function inSpan<T>(scope: string, name: string, opts: InSpanOptions, fn: (span: SpanHandle) => Promise<T>): Promise<T> {
  const api = await otelApi();
  if (!api) return fn(UNTRACED);
  const kinds = { server: api.SpanKind.SERVER, producer: api.SpanKind.PRODUCER, consumer: api.SpanKind.CONSUMER, internal: api.SpanKind.INTERNAL };
  const active = api.context.active();
  const parent = api.trace.getSpan(active) ? active : parentContextOf(api, opts.parent);
  const span = api.trace.getTracer(scope).startSpan(name, { kind: kinds[opts.kind], ...(opts.attributes ? { attributes: opts.attributes } : {}) }, parent);
  try {
    return await api.context.with(api.trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}
