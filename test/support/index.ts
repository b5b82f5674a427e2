export * from "./ports.js";
export * from "./process.js";
export * from "./nats.js";
export * from "./postgres.js";
export * from "./servers.js";
export * from "./stack.js";
export * from "./redis.js";
export * from "./store.js";
