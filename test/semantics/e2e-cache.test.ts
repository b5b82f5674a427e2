// End to end (real run API, real workers): cached runs (by input, expiry and
// source) and idempotency keys.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FIXTURES, importTasks, useE2eStack } from "./e2e-support.js";

const v1 = await importTasks(FIXTURES.tasks);
const v2 = await importTasks(FIXTURES.tasksV2);

describe("end to end: caching and idempotency", () => {
  const e2e = useE2eStack();
  // The run ids a fixture appended to `file`, one per call of the task.
  const callsIn = async (file: string): Promise<string[]> => (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);


  it("the second of two identical cached delays is COMPLETED cached: true with the first's result, and never reaches a worker", async () => {
    const file = join(e2e.stack.dir, "counted.txt");
    const first = await v1.counted!.delay({ file, n: 1 });
    const result = await first.result({ timeoutSeconds: 20 });
    expect(result).toEqual({ n: 1, runId: first.id });
    const second = await v1.counted!.delay({ file, n: 1 });
    expect(second.id).not.toBe(first.id);
    const record = await second.status();
    expect(record).toMatchObject({ state: "COMPLETED", cached: true, attempts: 0 });
    expect(record.cacheKey).toBe((await first.status()).cacheKey);
    expect(await second.result({ timeoutSeconds: 5 })).toEqual(result);
    // Another input is another key.
    const other = await v1.counted!.delay({ file, n: 2 });
    expect(await other.result({ timeoutSeconds: 20 })).toEqual({ n: 2, runId: other.id });
    expect(await callsIn(file)).toEqual([first.id, other.id]);
  });

  it("after a code change (same task, new source) the same input runs again", async () => {
    const file = join(e2e.stack.dir, "counted-v2.txt");
    const first = await v1.counted!.delay({ file, n: 7 });
    await first.result({ timeoutSeconds: 20 });
    const changed = await v2.counted!.delay({ file, n: 7 });
    expect(await changed.result({ timeoutSeconds: 20 })).toEqual({ n: 7, runId: changed.id });
    expect(await changed.status()).toMatchObject({ cached: false, attempts: 1 });
    expect((await changed.status()).cacheKey).not.toBe((await first.status()).cacheKey);
    expect(await callsIn(file)).toEqual([first.id, changed.id]);
  });

  it("once the cached result expired, the same input runs again", async () => {
    const file = join(e2e.stack.dir, "briefly.txt");
    const first = await v1.countedBriefly!.delay({ file, n: 1 });
    await first.result({ timeoutSeconds: 20 });
    const hit = await v1.countedBriefly!.delay({ file, n: 1 });
    expect(await hit.status()).toMatchObject({ state: "COMPLETED", cached: true });
    // expiresInSeconds: 5, counted from when the first run finished.
    const finishedAt = Date.parse((await first.status()).finishedAt!);
    await sleep(Math.max(0, finishedAt + 5300 - Date.now()));
    const after = await v1.countedBriefly!.delay({ file, n: 1 });
    expect(await after.result({ timeoutSeconds: 20 })).toEqual({ n: 1, runId: after.id });
    expect(await after.status()).toMatchObject({ cached: false, attempts: 1 });
    expect(await callsIn(file)).toEqual([first.id, after.id]);
  });

  it("20 concurrent delays with one idempotency key make one run", async () => {
    const idempotencyKey = `order-${Date.now()}`;
    const handles = await Promise.all(Array.from({ length: 20 }, () => v1.add!.delay({ a: 20, b: 1 }, { idempotencyKey })));
    const ids = new Set(handles.map((h) => h.id));
    expect(ids.size).toBe(1);
    expect(await handles[0]!.result({ timeoutSeconds: 20 })).toBe(21);
    const page = await e2e.stack.client.listRuns({ task: "add", limit: 100 });
    expect(page.runs.filter((r) => r.idempotencyKey === idempotencyKey)).toHaveLength(1);
    expect(page.runs.find((r) => r.idempotencyKey === idempotencyKey)).toMatchObject({ state: "COMPLETED", attempts: 1 });
  });
});
