/**
 * Trace export for Offload's own processes (the worker and run API bins),
 * only where the process opts in through the standard OpenTelemetry variables:
 * `OTEL_TRACES_EXPORTER=otlp`, or an `OTEL_EXPORTER_OTLP_ENDPOINT` /
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` with no `OTEL_TRACES_EXPORTER`.
 * Otherwise nothing is loaded: the OpenTelemetry SDK packages (optional peers
 * of this package, dependencies of the worker and the operator) are imported
 * here, on demand, so a process that does not trace pays neither their load
 * time nor their memory.
 */
import type { Logger } from "pino";
import { otelApi } from "./api.js";

/** A tracer provider set up by {@link startTracing}. */
export interface Tracing {
  /** Exports the spans not yet sent, then stops. Call it before the process exits. */
  shutdown(): Promise<void>;
}

/**
 * Whether the environment asks for traces to be exported. Unlike the
 * OpenTelemetry SDK's own default (`otlp` to localhost), unset means no:
 * Offload's processes send nothing anywhere unless told to.
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  const exporters = exportersOf(env);
  if (exporters.length > 0) return exporters.includes("otlp");
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

const exportersOf = (env: NodeJS.ProcessEnv): string[] =>
  (env.OTEL_TRACES_EXPORTER ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

/**
 * Installs a global tracer provider that exports spans over OTLP/HTTP (JSON)
 * in batches, when {@link tracingRequested}; answers undefined (and loads
 * nothing) otherwise. The exporter takes its endpoint, headers and timeout from
 * the `OTEL_EXPORTER_OTLP_*` variables, the batching from `OTEL_BSP_*`, the
 * resource from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (the service
 * name defaults to `serviceName`).
 */
export async function startTracing(serviceName: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const others = exportersOf(env).filter((e) => e !== "otlp" && e !== "none");
  if (others.length) log.warn({ exporters: others }, "OTEL_TRACES_EXPORTER: only otlp is supported; the others are ignored");
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (protocol && protocol !== "http/json") log.warn({ protocol }, "OTEL_EXPORTER_OTLP_PROTOCOL: spans are sent as http/json (which OTLP/HTTP receivers accept on the same port)");
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  // Later merges win: the variables override the process's own name.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  // Also installs the AsyncLocalStorage context manager (spans follow awaits) and the W3C propagator.
  provider.register();
  // Registered now: the SDK's spans load the API from here on (see otelApi).
  await otelApi();
  log.info({ serviceName: resource.attributes["service.name"], endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "(default)" }, "exporting traces over OTLP");
  return {
    async shutdown() {
      await provider.shutdown().catch((err: unknown) => log.warn({ err }, "could not export the last spans"));
    },
  };
}
