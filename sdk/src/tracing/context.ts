/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of a run, to
 * and from OpenTelemetry's API. Written against `@opentelemetry/api` only, and
 * not through its global propagator: that is a no-op until an application
 * installs an SDK, and a run's trace must still be carried by processes that
 * export nothing themselves (the app may trace while the worker does not, or
 * the other way round).
 */
import { context, createTraceState, isSpanContextValid, ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext } from "@opentelemetry/api";
import type { TraceContext } from "../protocol/index.js";

// version "00": 2 hex digits each for version and flags; the ids in lowercase hex (the spec's grammar).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace context of the active span, if there is a valid one (else undefined: nothing to continue). */
export function activeTraceContext(ctx: Context = context.active()): TraceContext | undefined {
  const span = trace.getSpanContext(ctx);
  if (!span || !isSpanContextValid(span)) return undefined;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  const tracestate = span.traceState?.serialize();
  return { traceparent: `00-${span.traceId}-${span.spanId}-${flags}`, ...(tracestate ? { tracestate } : {}) };
}

/** The span context a traceparent names, or undefined for one that is malformed or invalid (all-zero ids, version ff). */
export function spanContextOf(tc: TraceContext | undefined): SpanContext | undefined {
  const m = tc ? TRACEPARENT.exec(tc.traceparent) : null;
  if (!tc || !m || m[1] === "ff") return undefined;
  const span: SpanContext = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: Number.parseInt(m[4]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(tc.tracestate ? { traceState: createTraceState(tc.tracestate) } : {}),
  };
  return isSpanContextValid(span) ? span : undefined;
}

/** A context whose parent span is the one `tc` names (the root context when there is none). */
export function parentContextOf(tc: TraceContext | undefined): Context {
  const span = spanContextOf(tc);
  return span ? trace.setSpanContext(ROOT_CONTEXT, span) : ROOT_CONTEXT;
}
