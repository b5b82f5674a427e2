// One trace from the app's span through delay() to the worker's span, with the run API's spans in it: real
// worker and API processes that opt in to export through the standard OTEL_* variables, sending OTLP/HTTP to a
// receiver this test runs; the app's own spans go to an in-memory exporter in this process.
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as otel from "@opentelemetry/api";
import { trace, type Span } from "@opentelemetry/api";
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-node";
import { setDefaultClient } from "@offload/sdk";
import { activeTraceContext, spanContextOf, tracingRequested } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, ROOT, startStack, stopSharedPostgres, waitFor, type RunningWorker, type Stack } from "../support/index.js";
import { tracedFail, tracedFlaky, tracedOk } from "./fixtures/tasks.mjs";

const FIXTURES = new URL("./fixtures/tasks.mjs", import.meta.url).pathname;

/** A span as an OTLP/JSON export carries it, with the resource's service name. */
interface OtlpSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status?: { code?: number; message?: string };
  events?: { name: string; attributes?: OtlpAttribute[] }[];
}
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
}

const flat = (attrs: OtlpAttribute[] = []): Record<string, string | number | boolean> =>
  Object.fromEntries(attrs.map(({ key, value }) => [key, value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue ?? ""))]));

/** A minimal OTLP/HTTP receiver (JSON): keeps every span posted to /v1/traces. */
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces" || !String(req.headers["content-type"]).includes("json")) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: (Omit<OtlpSpan, "attributes" | "service"> & { attributes: OtlpAttribute[] })[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        const service = String(flat(rs.resource.attributes)["service.name"]);
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service, attributes: flat(s.attributes) });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("a trace across the hop", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  let stack: Stack | undefined;
  let worker: RunningWorker;
  const app = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(app)] });

  beforeAll(async () => {
    provider.register();
    receiver = await startReceiver();
    // Short batches, so spans arrive while the test waits for them.
    const otel = { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "50" };
    stack = await startStack({ apiEnv: otel });
    worker = await stack.startWorker({ module: FIXTURES, env: otel });
    setDefaultClient(stack.client);
  });
  afterAll(async () => {
    setDefaultClient(undefined);
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
    await receiver?.close();
    await provider.shutdown();
    trace.disable();
  });

  /** Runs `fn` in an app span (as a web request handler would be) and answers the span. */
  async function inAppSpan(name: string, fn: () => Promise<void>): Promise<Span> {
    return trace.getTracer("app").startActiveSpan(name, async (span) => {
      try {
        await fn();
      } finally {
        span.end();
      }
      return span;
    });
  }

  it("goes from the app's span through delay() and the run API to the worker's span, with the run's attributes and its logs", async () => {
    let runId = "";
    const appSpan = await inAppSpan("POST /signup", async () => {
      const run = await tracedOk.delay({ n: 21 });
      runId = run.id;
      // What the run API recorded: the context delay() was called in.
      expect((await run.status()).traceContext).toEqual(await activeTraceContext());
    });
    expect(await tracedOk.handle(runId).result({ timeoutSeconds: 30 })).toEqual({ doubled: 42 });
    const { traceId, spanId: appSpanId } = appSpan.spanContext();
    expect(app.getFinishedSpans().map((s) => s.name)).toContain("POST /signup");

    const inTrace = (name: string) => receiver!.spans.find((s) => s.traceId === traceId && s.name === name);
    const [runSpan, submit, dispatch] = await waitFor(
      "the worker's and the API's spans at the receiver",
      () => {
        const found = [inTrace("offload.run traced-ok"), inTrace("offload.submit"), inTrace("offload.dispatch")];
        return found.every(Boolean) ? (found as [OtlpSpan, OtlpSpan, OtlpSpan]) : undefined;
      },
      20_000,
    );
    expect(runSpan).toMatchObject({
      service: "offload-worker",
      parentSpanId: appSpanId,
      attributes: { "offload.task": "traced-ok", "offload.run.id": runId, "offload.run.attempt": 1, "offload.run.outcome": "COMPLETED" },
    });
    expect(runSpan.status?.code ?? 0).not.toBe(2);
    expect(submit).toMatchObject({ service: "offload-api", parentSpanId: appSpanId, attributes: { "offload.task": "traced-ok", "offload.run.id": runId } });
    expect(dispatch).toMatchObject({ service: "offload-api", parentSpanId: submit.spanId, attributes: { "offload.run.id": runId, "offload.published": 1 } });

    // The task's ctx.log line names the trace and the worker's span.
    const line = worker.child
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "hello from the task" && l.runId === runId);
    expect(line).toMatchObject({ trace_id: traceId, span_id: runSpan.spanId, n: 21 });
  });

  it("marks the worker's span ERROR with the exception when the task fails", async () => {
    let runId = "";
    const appSpan = await inAppSpan("POST /fail", async () => {
      runId = (await tracedFail.delay({})).id;
    });
    await expect(tracedFail.handle(runId).result({ timeoutSeconds: 30 })).rejects.toThrow(/boom in the task/);
    const { traceId } = appSpan.spanContext();
    const runSpan = await waitFor("the failed run's span", () => receiver!.spans.find((s) => s.traceId === traceId && s.name === "offload.run traced-fail"), 20_000);
    expect(runSpan.attributes).toMatchObject({ "offload.run.id": runId, "offload.run.outcome": "FAILED" });
    expect(runSpan.status).toMatchObject({ code: 2, message: "TypeError: boom in the task" });
    const exception = runSpan.events?.find((e) => e.name === "exception");
    expect(flat(exception?.attributes)).toMatchObject({ "exception.type": "TypeError", "exception.message": "boom in the task" });
  });

  it("keeps the trace across a retry: each try's span and the re-dispatch continue the caller's span", async () => {
    let runId = "";
    const appSpan = await inAppSpan("POST /flaky", async () => {
      runId = (await tracedFlaky.delay({})).id;
    });
    expect(await tracedFlaky.handle(runId).result({ timeoutSeconds: 30 })).toEqual({ attempt: 2 });
    const { traceId, spanId: appSpanId } = appSpan.spanContext();
    const spans = await waitFor("both tries' spans and both dispatches", () => {
      const mine = receiver!.spans.filter((s) => s.traceId === traceId);
      const tries = mine.filter((s) => s.name === "offload.run traced-flaky");
      const dispatches = mine.filter((s) => s.name === "offload.dispatch");
      return tries.length === 2 && dispatches.length === 2 ? { tries, dispatches } : undefined;
    }, 20_000);
    const byAttempt = spans.tries.sort((a, b) => Number(a.attributes["offload.run.attempt"]) - Number(b.attributes["offload.run.attempt"]));
    expect(byAttempt.map((s) => [s.attributes["offload.run.attempt"], s.attributes["offload.run.outcome"], s.parentSpanId])).toEqual([
      [1, "AWAITING_RETRY", appSpanId],
      [2, "COMPLETED", appSpanId],
    ]);
    // The retry's dispatch came from the sweeper, with no request around it: it joined the run's recorded trace.
    const sweeper = spans.dispatches.find((s) => s.parentSpanId === appSpanId);
    expect(sweeper?.attributes).toMatchObject({ "offload.run.id": runId, "offload.dispatch": 1 });
  });

  it("records no trace context for a delay() outside any span", async () => {
    const run = await tracedOk.delay({ n: 1 });
    expect((await run.status()).traceContext).toBeUndefined();
    await run.result({ timeoutSeconds: 30 });
  });
});

describe("trace settings", () => {
  it("loads no OpenTelemetry package in a process that does not use it", () => {
    // Which OpenTelemetry modules a fresh process has loaded after importing `imports` (the CommonJS builds are what Node loads).
    const loaded = (imports: string[]): string[] => {
      const script = `${imports.map((m) => `import "${m}";`).join("")} import { createRequire } from "node:module";
        console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes("@opentelemetry"))));`;
      return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" })) as string[];
    };
    expect(loaded(["@offload/sdk", "@offload/sdk/internal"])).toEqual([]);
    // The check sees the API when something does load it.
    expect(loaded(["@opentelemetry/api"]).length).toBeGreaterThan(0);
  });

  it("exports only when a process opts in through OTEL_* variables", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SDK_DISABLED: "true" })).toBe(false);
  });

  it("reads a W3C traceparent, and refuses an invalid one", () => {
    const tc = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "vendor=x" };
    expect(spanContextOf(otel, tc)).toMatchObject({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1, isRemote: true });
    expect(spanContextOf(otel, tc)?.traceState?.get("vendor")).toBe("x");
    expect(spanContextOf(otel, { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" })).toBeUndefined();
    expect(spanContextOf(otel, { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01" })).toBeUndefined();
    expect(spanContextOf(otel, { traceparent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" })).toBeUndefined();
  });
});
