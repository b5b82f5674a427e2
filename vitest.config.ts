import { defineConfig } from "vitest/config";

// System tests spawn real nats-server, PostgreSQL and Node processes; each test
// file owns its servers, so files may run side by side, but a 2-core CI machine
// only fits two at once.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
