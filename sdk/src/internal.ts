// For Offload's own packages (operator, worker) and tests: not a public API.
export * from "./protocol/index.js";
export * from "./config.js";
export * from "./errors.js";
export * from "./client.js";
export * from "./task.js";
export * from "./serve/index.js";
export * from "./nats/layout.js";
export * from "./nats/publisher.js";
export * from "./retries.js";
export * from "./cache.js";
export * from "./startup.js";
export * from "./tracing/context.js";
export * from "./tracing/run-span.js";
export * from "./tracing/setup.js";
export * from "./tracing/spans.js";
export * from "./tracing/api.js";
