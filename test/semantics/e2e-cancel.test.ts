// End to end (real run API, real workers): cancelling a run before it
// starts, while it runs, and after it completed.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RunCancelledError, RunFinishedError, type Task } from "@offload/sdk";
import { waitFor, waitForRun } from "../support/index.js";
import { FIXTURES, importTasks, useE2eStack } from "./e2e-support.js";

const tasks = { ...(await importTasks(FIXTURES.tasks)), ...(await importTasks(FIXTURES.later)) };

describe("end to end: cancellation", () => {
  const e2e = useE2eStack();
  const t = (name: string): Task => tasks[name]!;


  it("a run cancelled before it starts is CANCELLED at once and never reaches the task, even once a worker comes", async () => {
    // Scheduled for later: cancelled while it waits.
    const scheduled = await t("add").delay({ a: 1, b: 1 }, { delaySeconds: 60 });
    expect((await scheduled.cancel()).state).toBe("CANCELLED");
    // Dispatched to a task no worker serves yet: its message waits in the stream.
    const calls = join(e2e.stack.dir, "later.txt");
    const pending = await t("later").delay({ x: 1, file: calls });
    expect((await pending.status()).state).toBe("PENDING");
    const cancelled = await pending.cancel();
    expect(cancelled).toMatchObject({ state: "CANCELLED", attempts: 0 });
    await expect(pending.result({ timeoutSeconds: 5 })).rejects.toBeInstanceOf(RunCancelledError);
    // A worker for it starts: it takes the waiting message, sees the cancellation and drops it; a new run goes through.
    await e2e.stack.startWorker({ module: FIXTURES.later });
    const next = await t("later").delay({ x: 2, file: calls });
    expect(await next.result({ timeoutSeconds: 20 })).toEqual({ x: 2, attempt: 1 });
    // Messages are taken in order: by now the cancelled run's was dropped without a call.
    expect((await readFile(calls, "utf8")).trim().split("\n")).toEqual([next.id]);
    const record = await pending.status();
    expect(record).toMatchObject({ state: "CANCELLED", attempts: 0, startedAt: null, workerId: null });
  });

  it("a running run is CANCELLED once its worker aborted it; the function saw its signal aborted", async () => {
    const run = await t("waiter").delay({ dir: e2e.stack.dir });
    await waitFor("the run to start", () => existsSync(join(e2e.stack.dir, `${run.id}.started`)));
    // Recorded RUNNING only once it has run for the worker's RUNNING delay: cancelled before that, it is still
    // PENDING to the run API, which records it CANCELLED at once (attempts 0) while the worker aborts the function.
    await waitForRun(() => run.status(), (r) => r.state === "RUNNING", "the run to be RUNNING");
    const asked = await run.cancel();
    expect(["RUNNING", "CANCELLED"]).toContain(asked.state);
    const record = await waitForRun(() => run.status(), (r) => r.state === "CANCELLED", "the run to be CANCELLED", 15_000);
    expect(record).toMatchObject({ attempts: 1, result: null });
    expect(record.finishedAt).not.toBeNull();
    await waitFor("the function to see its signal", () => existsSync(join(e2e.stack.dir, `${run.id}.aborted`)));
    expect(await readFile(join(e2e.stack.dir, `${run.id}.aborted`), "utf8")).toBe("RunCancelledError");
    await expect(run.result({ timeoutSeconds: 5 })).rejects.toBeInstanceOf(RunCancelledError);
    // Cancelling it again is fine.
    expect((await run.cancel()).state).toBe("CANCELLED");
  });

  it("cancelling a completed run is refused: 409, as a RunFinishedError", async () => {
    const run = await t("add").delay({ a: 2, b: 2 });
    expect(await run.result({ timeoutSeconds: 20 })).toBe(4);
    const err = await run.cancel().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFinishedError);
    expect(err).toMatchObject({ status: 409, code: "OFFLOAD_RUN_FINISHED", runId: run.id });
    expect((await run.status()).state).toBe("COMPLETED");
  });
});
