/**
 * `@opentelemetry/api`, loaded only in a process where OpenTelemetry is in
 * use. Loading it costs start-up time in every app, worker and run API, and
 * without a registered tracer provider or context manager there is no active
 * span to continue and no span worth starting: so until something registers
 * one, the SDK leaves it unloaded and traces nothing.
 */
import type * as OtelApi from "@opentelemetry/api";

export type { OtelApi };

// Where the API keeps what was registered (tracer provider, context manager, propagator), created on the first
// registration: @opentelemetry/api's src/internal/global-utils.ts, Symbol.for(`opentelemetry.js.api.${major}`).
const REGISTERED = Symbol.for("opentelemetry.js.api.1");

let api: typeof OtelApi | undefined;

/** The OpenTelemetry API if this process registered anything with it (loaded on first use), else undefined. */
export async function otelApi(): Promise<typeof OtelApi | undefined> {
  if (api) return api;
  if (!(REGISTERED in globalThis)) return undefined;
  api = await import("@opentelemetry/api");
  return api;
}
