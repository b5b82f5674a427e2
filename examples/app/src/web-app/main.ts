#!/usr/bin/env node
/**
 * Runs the example web app: `node examples/app/dist/web-app/main.js`.
 * PORT (default 3000) and OFFLOAD_API_URL / OFFLOAD_API_TOKEN for the run API.
 */
import { buildApp } from "./app.js";

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got "${process.env.PORT}"`);
  process.exit(2);
}
const app = buildApp({ logger: true });
await app.listen({ port, host: process.env.HOST ?? "127.0.0.1" });
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
