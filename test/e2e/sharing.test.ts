import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import type { OffloadClient, Run } from "@offload/sdk";
import { task } from "@offload/sdk";
import { z } from "zod";
import { killAll, startStack, stopSharedPostgres, waitFor, type Stack } from "../support/index.js";

const FIXTURES = join(import.meta.dirname, "fixtures/tasks.mjs");

// The app's view of the fixture task: same name and schema as the worker's module.
const add = task({ name: "add", input: z.object({ a: z.number(), b: z.number() }) }, (i) => ({ sum: i.a + i.b, workerId: "" }));

describe("1,000 runs from one map() call, two worker processes", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
    await Promise.all([stack.startWorker({ module: FIXTURES, concurrency: 8 }), stack.startWorker({ module: FIXTURES, concurrency: 8 })]);
  });
  afterAll(async () => {
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
  });

  it("all complete, with the work shared between both workers", async () => {
    const client: OffloadClient = stack.client;
    const bound = task({ ...add.options, client }, add.fn);
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ a: i, b: 1 }));
    const handles = await bound.map(inputs, { deferred: true });
    expect(handles).toHaveLength(1000);
    expect(new Set(handles.map((h) => h.id)).size).toBe(1000);

    const results = await Promise.all(handles.map((h) => h.result({ timeoutSeconds: 120 })));
    results.forEach((r, i) => expect(r.sum).toBe(i + 1));

    const byWorker = new Map<string, number>();
    for (const r of results) byWorker.set(r.workerId, (byWorker.get(r.workerId) ?? 0) + 1);
    expect(byWorker.size).toBe(2);
    for (const n of byWorker.values()) expect(n).toBeGreaterThan(0);

    // Every record agrees: completed once, on its first attempt.
    const completed = await waitFor("all 1,000 records COMPLETED", async () => {
      const runs: Run[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listRuns({ task: "add", state: "COMPLETED", limit: 500, ...(cursor ? { cursor } : {}) });
        runs.push(...page.runs);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return runs.length === 1000 ? runs : undefined;
    });
    expect(completed).toHaveLength(1000);
    expect(completed.filter((r) => r.attempts !== 1).map((r) => ({ id: r.id, attempts: r.attempts }))).toEqual([]);
  });
});
