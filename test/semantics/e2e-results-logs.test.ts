// End to end (real run API, real workers): large results through the object
// store, per-run logs, the task list, and runs waiting for a worker.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { type Task } from "@offload/sdk";
import { waitFor } from "../support/index.js";
import { FIXTURES, importTasks, useE2eStack } from "./e2e-support.js";

const tasks = { ...(await importTasks(FIXTURES.tasks)), ...(await importTasks(FIXTURES.later)) };

describe("end to end: results, logs and waiting runs", () => {
  const e2e = useE2eStack();
  const t = (name: string): Task => tasks[name]!;


  it("a 5 MiB result round-trips through the object store", async () => {
    const run = await t("big").delay({ mib: 5 });
    const result = (await run.result({ timeoutSeconds: 30 })) as { data: string };
    expect(result.data).toHaveLength(5 * 1024 * 1024);
    expect(result.data.replaceAll("x", "")).toBe("");
    const record = await run.status();
    expect(record).toMatchObject({ state: "COMPLETED", resultRef: run.id, result: null });
  });

  it("the lines a run logs are served for that run only, at info and above", async () => {
    const [a, b] = await Promise.all([t("chatty").delay({ tag: "a" }), t("chatty").delay({ tag: "b" })]);
    await Promise.all([a.result({ timeoutSeconds: 20 }), b.result({ timeoutSeconds: 20 })]);
    const logs = await waitFor("run a's three lines", async () => {
      const l = await a!.logs();
      return l.lines.length >= 3 ? l : undefined;
    });
    expect(logs.truncated).toBe(false);
    expect(logs.lines.map((l) => [l.level, l.msg])).toEqual([
      ["info", "starting a"],
      ["warn", "halfway a"],
      ["info", "done a"],
    ]);
    expect(logs.lines[0]).toMatchObject({ attempt: 1, data: { tag: "a" } });
    const other = await waitFor("run b's three lines", async () => {
      const l = await b!.logs();
      return l.lines.length >= 3 ? l : undefined;
    });
    expect(other.lines.map((l) => l.msg)).toEqual(["starting b", "halfway b", "done b"]);
    // A run that logged nothing has no lines.
    const quiet = await t("add").delay({ a: 1, b: 1 });
    await quiet.result({ timeoutSeconds: 20 });
    expect((await quiet.logs()).lines).toEqual([]);
  });

  it("run.watch() follows a run live, state by state, until it is COMPLETED", async () => {
    const run = await t("chatty").delay({ tag: "watched" });
    const seen: string[] = [];
    for await (const r of run.watch()) seen.push(`${r.state}/${r.attempts}`);
    expect(seen.at(-1)).toBe("COMPLETED/1");
    // Each state once, in the order a run lives them (it may already be past PENDING when watching starts; a
    // run shorter than the worker's RUNNING delay goes from PENDING to COMPLETED, its start recorded with it).
    const order = ["PENDING/0", "RUNNING/1", "COMPLETED/1"];
    const steps = seen.map((s) => order.indexOf(s));
    expect(steps.every((step, i) => step >= 0 && (i === 0 || step > steps[i - 1]!)), seen.join(" > ")).toBe(true);
    expect((await run.status()).startedAt).not.toBeNull();
  });

  it("run.watch() of a finished run yields it once and ends; of an unknown run, throws 404", async () => {
    const run = await t("add").delay({ a: 1, b: 2 });
    await run.result({ timeoutSeconds: 20 });
    const seen = [];
    for await (const r of run.watch()) seen.push(r.state);
    expect(seen).toEqual(["COMPLETED"]);
    const unknown = t("add").handle("00000000-0000-4000-8000-000000000000");
    await expect(unknown.watch().next()).rejects.toMatchObject({ status: 404, code: "OFFLOAD_RUN_NOT_FOUND" });
  });

  it("lists the tasks the workers serve", async () => {
    const list = await waitFor("the worker's tasks to be listed", async () => {
      const tasks = await e2e.stack.client.listTasks();
      return tasks.some((x) => x.name === "chatty" && x.workers.length > 0) ? tasks : undefined;
    });
    expect(list.find((x) => x.name === "chatty")!.workers[0]).toMatchObject({ concurrency: 2 });
  });

  it("a run of a task no worker serves stays PENDING, and completes once a worker for it starts", async () => {
    const run = await t("later").delay({ x: 5 });
    expect((await run.status()).state).toBe("PENDING");
    await sleep(1500);
    expect((await run.status()).state).toBe("PENDING");
    await e2e.stack.startWorker({ module: FIXTURES.later });
    expect(await run.result({ timeoutSeconds: 20 })).toEqual({ x: 5, attempt: 1 });
    expect(await run.status()).toMatchObject({ state: "COMPLETED", attempts: 1 });
  });
});
