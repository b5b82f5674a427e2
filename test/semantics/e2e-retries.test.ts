// End to end (real run API, real workers): retries with their delays,
// timeouts, and a FAILED run retried through the API.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunFailedError, isRunFailedError, type Task } from "@offload/sdk";
import { FIXTURES, importTasks, useE2eStack } from "./e2e-support.js";

const tasks = await importTasks(FIXTURES.tasks);

describe("end to end: retries and timeouts", () => {
  const e2e = useE2eStack();
  const t = (name: string): Task => tasks[name]!;
  // The times a fixture recorded, one per try, and the gaps between them in ms.
  const tries = async (file: string): Promise<number[]> => (await readFile(file, "utf8")).trim().split("\n").map(Number);
  const gaps = (times: number[]): number[] => times.slice(1).map((at, i) => at - times[i]!);


  it("a task failing twice with retries: 2 ends COMPLETED on its 3rd try, each retry after its configured delay", async () => {
    const file = join(e2e.stack.dir, "twice.txt");
    const run = await t("flakyTwice").delay({ file, failTimes: 2 });
    expect(await run.result({ timeoutSeconds: 30 })).toEqual({ attempt: 3 });
    const record = await run.status();
    expect(record).toMatchObject({ state: "COMPLETED", attempts: 3, error: null });
    const times = await tries(file);
    expect(times).toHaveLength(3);
    // retryDelaySeconds: [1, 2]
    const [first, second] = gaps(times) as [number, number];
    expect(first).toBeGreaterThanOrEqual(1000);
    expect(first).toBeLessThan(2500);
    expect(second).toBeGreaterThanOrEqual(2000);
    expect(second).toBeLessThan(3500);
  });

  it("with retries: 1 it ends FAILED after 2 tries, with the last try's error", async () => {
    const file = join(e2e.stack.dir, "once.txt");
    const run = await t("flakyOnce").delay({ file, failTimes: 5 });
    const err = await run.result({ timeoutSeconds: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFailedError);
    expect(isRunFailedError(err) && err.runError).toMatchObject({ type: "FlakyError", message: "try 2 failed" });
    // Where the task threw, on the worker, rides along; the error's own stack stays where result() found the failure.
    const failed = err as RunFailedError;
    expect(failed.remoteStack).toMatch(/^FlakyError: try 2 failed\n\s+at \S*flakyFn\b.*\(.*e2e-tasks\.mjs:\d+:\d+\)/);
    expect(failed.stack).toMatch(/^RunFailedError: run [0-9a-f-]{36} failed: FlakyError: try 2 failed\n/);
    expect(failed.stack).not.toContain("e2e-tasks.mjs");
    expect(await run.status()).toMatchObject({ state: "FAILED", attempts: 2, error: { type: "FlakyError", message: "try 2 failed", stack: failed.remoteStack } });
    const times = await tries(file);
    expect(times).toHaveLength(2);
    expect(gaps(times)[0]).toBeGreaterThanOrEqual(1000);
    expect(gaps(times)[0]).toBeLessThan(2500);
  });

  it("a task ignoring its signal past timeoutSeconds ends FAILED TimeoutError, and the worker takes new runs meanwhile", async () => {
    // Both of the worker's slots go to runs that sleep 6 s with a 1 s timeout.
    const woke = join(e2e.stack.dir, "woke.txt");
    const stuck = await Promise.all([1, 2].map(() => t("stubborn").delay({ ms: 6000, file: woke })));
    for (const run of stuck) {
      const err = await run.result({ timeoutSeconds: 20 }).catch((e: unknown) => e);
      expect(isRunFailedError(err) && err.runError.type).toBe("TimeoutError");
    }
    // The functions are still asleep, yet a new run gets a slot and completes.
    const quick = await t("add").delay({ a: 2, b: 3 });
    expect(await quick.result({ timeoutSeconds: 4 })).toBe(5);
    expect(existsSync(woke)).toBe(false);
    const records = await Promise.all(stuck.map((r) => r.status()));
    for (const r of records) expect(r).toMatchObject({ state: "FAILED", attempts: 1, error: { type: "TimeoutError" } });
    // The worker declared the timeout: a stack would point into the worker, so there is none.
    for (const r of records) expect(r.error).not.toHaveProperty("stack");
  });

  it("a FAILED run retried through the API runs again under the same id and completes, attempts counting on", async () => {
    const file = join(e2e.stack.dir, "manual.txt");
    const run = await t("flakyNoRetry").delay({ file, failTimes: 1 });
    await expect(run.result({ timeoutSeconds: 20 })).rejects.toBeInstanceOf(RunFailedError);
    expect(await run.status()).toMatchObject({ state: "FAILED", attempts: 1 });
    const retried = await run.retry();
    expect(retried.id).toBe(run.id);
    expect(["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]).toContain(retried.state);
    expect(await run.result({ timeoutSeconds: 20 })).toEqual({ attempt: 2 });
    expect(await run.status()).toMatchObject({ state: "COMPLETED", attempts: 2, error: null });
    expect(await tries(file)).toHaveLength(2);
    // Retrying a COMPLETED run is refused with a typed error.
    await expect(run.retry()).rejects.toMatchObject({ name: "RunNotRetryableError", status: 409 });
    expect((await run.status()).state).toBe("COMPLETED");
  });
});
