import { defineConfig } from "vitest/config";

// System tests spawn real nats-server, PostgreSQL and Node processes; each test
// file owns its servers, so files may run side by side, but a 2-core CI machine
// only fits two at once.
//
// The image test builds three images with podman (npm ci and tsc inside, both
// cores flat out for minutes): it runs last, on its own, so that it does not
// starve the system tests' processes of CPU while they wait on each other.
export default defineConfig({
  test: {
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "system", include: ["test/**/*.test.ts"], exclude: ["test/images/**"], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "images", include: ["test/images/**/*.test.ts"], sequence: { groupOrder: 1 } } },
    ],
  },
});
