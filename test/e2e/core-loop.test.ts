import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { join } from "node:path";
import { setDefaultClient } from "@offload/sdk";
import { ROOT, killAll, startStack, stopSharedPostgres, type DbKind, type Stack } from "../support/index.js";
import { textReport, sendWelcomeEmail } from "../../examples/app/dist/tasks.js";

const EXAMPLES = join(ROOT, "examples/app/dist/tasks.js");

// The heart of Offload, against each database the run API supports.
describe.each<DbKind>(["postgres", "pglite"])("a run delayed through the SDK, with %s", (db) => {
  let stack: Stack | undefined;
  afterAll(async () => {
    setDefaultClient(undefined);
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
  });

  it("is COMPLETED with its typed result", async () => {
    stack = await startStack({ db });
    await stack.startWorker({ module: EXAMPLES, concurrency: 2 });
    setDefaultClient(stack.client);

    const run = await textReport.delay({ text: "the cat and the hat and the bat", top: 2 });
    expect(run.id).toMatch(/^[0-9a-f-]{36}$/);
    const result = await run.result({ timeoutSeconds: 30 });
    expectTypeOf(result).toEqualTypeOf<{ words: number; distinct: number; top: { word: string; count: number }[] }>();
    expect(result).toEqual({ words: 8, distinct: 5, top: [{ word: "the", count: 3 }, { word: "and", count: 2 }] });

    const record = await run.status();
    expect(record).toMatchObject({ id: run.id, task: "text-report", state: "COMPLETED", attempts: 1, cached: false, error: null });
    expect(record.parameters).toEqual({ text: "the cat and the hat and the bat", top: 2 });
    expect(record.workerId).toBeTruthy();
    expect(Date.parse(record.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(record.startedAt!));
    expect(Date.parse(record.startedAt!)).toBeGreaterThanOrEqual(Date.parse(record.createdAt));
    // updatedAt is when the run API recorded the outcome: after the worker finished.
    expect(Date.parse(record.updatedAt)).toBeGreaterThanOrEqual(Date.parse(record.finishedAt!));
  });

  it("rejects bad input in delay() before anything is sent", async () => {
    await expect(sendWelcomeEmail.delay({ to: "not-an-email", name: "x" })).rejects.toThrow(/to:/);
    const page = await stack!.client.listRuns({ task: "send-welcome-email" });
    expect(page.runs).toHaveLength(0);
  });
});
