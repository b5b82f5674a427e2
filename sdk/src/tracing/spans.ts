/**
 * Spans for Offload's own processes (the run API's submit and dispatch),
 * through `@opentelemetry/api` only: with no tracer provider installed (see
 * startTracing) they cost a no-op call each.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import type { TraceContext } from "../protocol/index.js";
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

const KINDS = { server: SpanKind.SERVER, producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER, internal: SpanKind.INTERNAL } as const;

/**
 * Runs `fn` inside a new span of the tracer `scope`, as the active span (so
 * spans started inside become its children). A throw is recorded on the span
 * (status ERROR) and rethrown.
 */
export async function inSpan<T>(scope: string, name: string, opts: InSpanOptions, fn: (span: SpanHandle) => Promise<T>): Promise<T> {
  const active = context.active();
  const parent = trace.getSpan(active) ? active : parentContextOf(opts.parent);
  const span = trace.getTracer(scope).startSpan(name, { kind: KINDS[opts.kind], ...(opts.attributes ? { attributes: opts.attributes } : {}) }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}
