/**
 * The W3C trace context (https://www.w3.org/TR/trace-context/) of a run, to
 * and from OpenTelemetry's API. Not through the API's global propagator: that
 * is a no-op until an application installs one, and a run's trace must still
 * be carried by processes that export nothing themselves (the app may trace
 * while the worker does not, or the other way round).
 */
import type { Context, SpanContext } from "@opentelemetry/api";
import type { TraceContext } from "../protocol/index.js";
import { otelApi, type OtelApi } from "./api.js";

// version "00": 2 hex digits each for version and flags; the ids in lowercase hex (the spec's grammar).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
// The one flag W3C defines (and OpenTelemetry's TraceFlags.SAMPLED).
const SAMPLED = 1;

/** The ids and flags a traceparent names, or undefined for one that is malformed or invalid (all-zero ids, version ff). */
export function parseTraceparent(traceparent: string): { traceId: string; spanId: string; sampled: boolean } | undefined {
  const m = TRACEPARENT.exec(traceparent);
  if (!m || m[1] === "ff" || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, sampled: (Number.parseInt(m[4]!, 16) & SAMPLED) === SAMPLED };
}

/** The trace context of the active span, if OpenTelemetry is in use and a valid span is active. */
export async function activeTraceContext(): Promise<TraceContext | undefined> {
  const api = await otelApi();
  const span = api?.trace.getSpanContext(api.context.active());
  if (!api || !span || !api.isSpanContextValid(span)) return undefined;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  const tracestate = span.traceState?.serialize();
  return { traceparent: `00-${span.traceId}-${span.spanId}-${flags}`, ...(tracestate ? { tracestate } : {}) };
}

/** The remote span context `tc` names, or undefined. */
export function spanContextOf(api: typeof OtelApi, tc: TraceContext | undefined): SpanContext | undefined {
  const parsed = tc ? parseTraceparent(tc.traceparent) : undefined;
  if (!tc || !parsed) return undefined;
  return {
    traceId: parsed.traceId,
    spanId: parsed.spanId,
    traceFlags: parsed.sampled ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
    isRemote: true,
    ...(tc.tracestate ? { traceState: api.createTraceState(tc.tracestate) } : {}),
  };
}

/** A context whose parent span is the one `tc` names (the root context when there is none). */
export function parentContextOf(api: typeof OtelApi, tc: TraceContext | undefined): Context {
  const span = spanContextOf(api, tc);
  return span ? api.trace.setSpanContext(api.ROOT_CONTEXT, span) : api.ROOT_CONTEXT;
}
