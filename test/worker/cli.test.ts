import { afterAll, describe, expect, it } from "vitest";
import { killAll, startProcess } from "../support/index.js";
import { FIXTURE, NO_TASKS_FIXTURE, WORKER_BIN } from "./helpers.js";

// The command line: none of these reach NATS (nothing listens on the URL given).
// OFFLOAD_START_WAIT_SECONDS=0: try NATS once, not for the default 30 s (test/startup covers the wait).
const NO_NATS = { OFFLOAD_NATS_URL: "nats://127.0.0.1:1", OFFLOAD_START_WAIT_SECONDS: "0" };

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | string; out: string }> {
  const child = startProcess("offload-worker", process.execPath, [WORKER_BIN, ...args], { ...NO_NATS, OFFLOAD_MODULE: "", OFFLOAD_TASKS: "", ...env });
  const code = await child.exited;
  return { code, out: child.output() };
}

describe("offload-worker: command line", () => {
  afterAll(async () => {
    await killAll();
  });

  it("--help prints usage with every option and exits 0", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    expect(out).toContain("Usage: offload-worker --module PATH");
    for (const word of ["--tasks", "--concurrency", "OFFLOAD_MODULE", "OFFLOAD_WORKER_PORT", "OFFLOAD_DRAIN_SECONDS", "OFFLOAD_NATS_URL", "OFFLOAD_LOG_LEVEL", "OFFLOAD_RUNNING_EVENT_DELAY_MS", "OFFLOAD_BATCH_EVENTS"]) {
      expect(out).toContain(word);
    }
  });

  it("exits 2 naming each bad setting", async () => {
    const { code, out } = await run(["--concurrency", "zero"], {
      OFFLOAD_NATS_URL: "http://nats:4222",
      OFFLOAD_WORKER_PORT: "99999",
      OFFLOAD_RUNNING_EVENT_DELAY_MS: "-5",
      OFFLOAD_BATCH_EVENTS: "maybe",
    });
    expect(code).toBe(2);
    expect(out).toContain("invalid configuration");
    expect(out).toContain("OFFLOAD_MODULE (--module)");
    expect(out).toContain("OFFLOAD_CONCURRENCY (--concurrency)");
    expect(out).toContain("OFFLOAD_NATS_URL");
    expect(out).toContain("OFFLOAD_WORKER_PORT");
    expect(out).toContain("OFFLOAD_RUNNING_EVENT_DELAY_MS");
    expect(out).toContain("OFFLOAD_BATCH_EVENTS");
  });

  it("--help documents TypeScript modules and --watch", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    for (const word of [".ts, .mts, .cts", "tsx", "-w, --watch", "restart", "drain time"]) expect(out).toContain(word);
  });

  it("--watch exits 2 for a missing module instead of waiting for it to change", async () => {
    const { code, out } = await run(["--watch", "--module", "./does/not/exist.ts"]);
    expect(code).toBe(2);
    expect(out).toContain("does not exist");
  });

  it("exits 2 on an unknown flag", async () => {
    const { code, out } = await run(["--module", FIXTURE, "--bogus"]);
    expect(code).toBe(2);
    expect(out).toContain("--bogus");
  });

  it("exits 2 for a task name the module does not export, listing those it does", async () => {
    const { code, out } = await run(["--module", FIXTURE, "--tasks", "add,nope"]);
    expect(code).toBe(2);
    expect(out).toContain('no task "nope"');
    expect(out).toMatch(/it has: .*add.*boom/);
  });

  it("exits 2 for a module that exports no task, and for a missing module", async () => {
    const none = await run(["--module", NO_TASKS_FIXTURE]);
    expect(none.code).toBe(2);
    expect(none.out).toContain("exports no task");
    const missing = await run([], { OFFLOAD_MODULE: "./does/not/exist.mjs" });
    expect(missing.code).toBe(2);
    expect(missing.out).toContain("does not exist");
  });

  it("exits 1 with a log line when NATS cannot be reached", async () => {
    const { code, out } = await run(["--module", FIXTURE], { OFFLOAD_WORKER_PORT: "0" });
    expect(code).toBe(1);
    expect(out).toContain("worker failed to start");
  });
});
