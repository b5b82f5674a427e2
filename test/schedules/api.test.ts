// Cron schedules through the run API: PUT/GET/list/DELETE of /v1/schedules and their 400s and 404s, runs fired
// on time with the schedule's parameters and priority, suspend, a time zone, and concurrencyPolicy Forbid and Replace
// against a real worker running a slow task. One real run API on real PostgreSQL and NATS for the whole file; a seconds
// cron (six fields) keeps each test to a few seconds.
import { randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startProcess, untilReady, waitFor, WORKER_BIN, type Child } from "../support/index.js";
import { call, tempDir, useApiProcess } from "../api/helpers.js";
import { firedRuns, getSchedule, putSchedule, untilFired } from "./support.js";

const TASKS = fileURLToPath(new URL("./fixtures/tasks.mjs", import.meta.url));
const id = (): string => randomUUID().slice(0, 8);

describe("/v1/schedules", () => {
  const t = useApiProcess();
  let worker: Child | undefined;
  let dir: { path: string; remove(): Promise<void> } | undefined;

  beforeAll(async () => {
    dir = await tempDir("offload-schedules-");
    const port = await freePort();
    worker = startProcess("offload-worker", process.execPath, [WORKER_BIN, "--module", TASKS, "--concurrency", "4"], {
      OFFLOAD_NATS_URL: t.nats.url,
      OFFLOAD_API_URL: t.api.url,
      OFFLOAD_WORKER_PORT: String(port),
    });
    await untilReady(worker, "the worker to be ready", `http://127.0.0.1:${port}/readyz`, 30_000);
  });
  afterAll(async () => {
    await worker?.stop(5000);
    await dir?.remove();
  });

  it("creates, reads, lists, replaces and deletes schedules, per namespace", async () => {
    const key = `crud-${id()}`;
    const body = { task: "report", schedule: "0 9 * * *", timeZone: "Asia/Tokyo", parameters: { to: "ops" }, priority: 2 };
    const created = await putSchedule(t.api.url, key, body);
    expect(created.status).toBe(201);
    // 09:00 in Tokyo (UTC+9, no DST) is midnight UTC: the next one after now.
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(created.schedule).toMatchObject({
      key, namespace: "default", task: "report", schedule: "0 9 * * *", timeZone: "Asia/Tokyo", parameters: { to: "ops" },
      concurrencyPolicy: "Allow", suspend: false, startingDeadlineSeconds: null, priority: 2,
      lastScheduleTime: null, lastRunId: null, nextScheduleTime: midnight.toISOString(),
    });
    expect(await getSchedule(t.api.url, key)).toEqual(created.schedule);

    // The same again (as a controller's resync does): 200, nothing moves.
    const again = await putSchedule(t.api.url, key, body);
    expect(again).toEqual({ status: 200, schedule: created.schedule });
    // A new time zone: the next time counts anew; updatedAt moves.
    const moved = await putSchedule(t.api.url, key, { ...body, timeZone: "UTC" });
    expect(moved.status).toBe(200);
    const nineUtc = new Date();
    nineUtc.setUTCHours(9, 0, 0, 0);
    if (nineUtc.getTime() <= Date.now()) nineUtc.setUTCDate(nineUtc.getUTCDate() + 1);
    expect(moved.schedule.nextScheduleTime).toBe(nineUtc.toISOString());
    expect(Date.parse(moved.schedule.updatedAt)).toBeGreaterThan(Date.parse(created.schedule.updatedAt));
    expect(moved.schedule.createdAt).toBe(created.schedule.createdAt);
    // Suspended: no next time.
    const suspended = await putSchedule(t.api.url, key, { ...body, suspend: true });
    expect(suspended.schedule).toMatchObject({ suspend: true, nextScheduleTime: null });

    // The same key in another namespace is another schedule; the namespace may come in the query too.
    const other = await call(t.api.url, "PUT", `/v1/schedules/${key}?namespace=team-b`, { task: "other", schedule: "@hourly" });
    expect(other.status).toBe(201);
    expect(other.body).toMatchObject({ namespace: "team-b", task: "other", timeZone: "UTC" });
    const ofB = await call(t.api.url, "GET", "/v1/schedules?namespace=team-b");
    expect(ofB.body.schedules.map((s: { key: string }) => s.key)).toEqual([key]);
    const all = await call(t.api.url, "GET", "/v1/schedules");
    const mine = all.body.schedules.filter((s: { key: string }) => s.key === key);
    expect(mine.map((s: { namespace: string; task: string }) => [s.namespace, s.task])).toEqual([["default", "report"], ["team-b", "other"]]);

    const gone = await call(t.api.url, "DELETE", `/v1/schedules/${key}`);
    expect(gone.status).toBe(204);
    const missing = await call(t.api.url, "GET", `/v1/schedules/${key}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: "OFFLOAD_SCHEDULE_NOT_FOUND", message: expect.stringContaining(key) });
    expect((await call(t.api.url, "DELETE", `/v1/schedules/${key}`)).body.code).toBe("OFFLOAD_SCHEDULE_NOT_FOUND");
    // The other namespace's is still there.
    expect((await getSchedule(t.api.url, key, "team-b")).task).toBe("other");

    // In the OpenAPI document, with the codes each answers.
    const doc = (await call(t.api.url, "GET", "/docs/json")).body;
    expect(Object.keys(doc.paths["/v1/schedules/{key}"]).sort()).toEqual(["delete", "get", "put"]);
    expect(Object.keys(doc.paths["/v1/schedules"])).toEqual(["get"]);
    expect(JSON.stringify(doc.paths["/v1/schedules/{key}"].put.responses["400"])).toContain("OFFLOAD_INVALID_SCHEDULE");
    expect(JSON.stringify(doc.paths["/v1/schedules/{key}"].get.responses["404"])).toContain("OFFLOAD_SCHEDULE_NOT_FOUND");
  });

  it("refuses what it cannot read with a 400 naming the field, and records nothing", async () => {
    const key = `bad-${id()}`;
    const refused = async (body: unknown, path = `/v1/schedules/${key}`): Promise<{ code: string; issues?: { path: string; message: string }[] }> => {
      const res = await call(t.api.url, "PUT", path, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      return res.body;
    };
    for (const schedule of ["61 * * * *", "0 0 30 2 *", "* * * * * * *", "every minute", " "]) {
      const body = await refused({ task: "x", schedule });
      expect(body.code, schedule).toBe("OFFLOAD_INVALID_SCHEDULE");
      expect(body.issues?.[0]?.path).toBe("schedule");
    }
    const zone = await refused({ task: "x", schedule: "* * * * *", timeZone: "Mars/Olympus_Mons" });
    expect(zone).toMatchObject({ code: "OFFLOAD_INVALID_SCHEDULE", issues: [{ path: "timeZone", message: expect.stringContaining("IANA") }] });
    // The body's own shape, the key, and text run records cannot store.
    expect((await refused({ task: "x", schedule: "* * * * *", concurrencyPolicy: "Sometimes" })).code).toBe("OFFLOAD_VALIDATION");
    expect((await refused({ task: "x", schedule: "* * * * *", extra: 1 })).issues?.[0]?.path).toBe("extra");
    expect((await refused({ task: "x", schedule: "* * * * *" }, "/v1/schedules/-starts-badly")).code).toBe("OFFLOAD_VALIDATION");
    const nul = await refused({ task: "x", schedule: "* * * * *", parameters: { a: "x\u0000y" } });
    expect(nul).toMatchObject({ code: "OFFLOAD_VALIDATION", issues: [{ path: "parameters.a" }] });
    const two = await refused({ task: "x", schedule: "* * * * *", namespace: "a" }, `/v1/schedules/${key}?namespace=b`);
    expect(two.issues?.[0]?.path).toBe("namespace");
    expect((await call(t.api.url, "GET", `/v1/schedules/${key}`)).status).toBe(404);
    expect((await call(t.api.url, "GET", `/v1/schedules/${key}?namespace=a`)).status).toBe(404);

    // Parameters that break the input schema the worker registered for the task: refused now, not at every time.
    const wrong = await waitFor("the worker's registration to reach the API", async () => {
      const res = await call(t.api.url, "PUT", `/v1/schedules/${key}`, { task: "sched-gate", schedule: "@daily", parameters: { dir: 5 } });
      return res.status === 400 ? res.body : undefined;
    });
    expect(wrong).toMatchObject({ code: "OFFLOAD_INVALID_PARAMETERS", issues: [{ path: "parameters.dir" }] });
    expect((await call(t.api.url, "GET", `/v1/schedules/${key}`)).status).toBe(404);
  });

  it("starts one run per scheduled time with its parameters and priority; suspended, it starts none", async () => {
    const task = `tick-${id()}`;
    const key = `tick-${id()}`;
    // A second schedule on the same times is the witness: once it fired a time, the scheduler has looked at that time.
    const witness = `witness-${id()}`;
    await putSchedule(t.api.url, key, { task, schedule: "*/2 * * * * *", parameters: { n: 1 }, priority: 1 });
    await putSchedule(t.api.url, witness, { task: `${task}-w`, schedule: "*/2 * * * * *" });
    const fired = await untilFired(t.api.url, task, key, 2);
    expect(fired[1]!.time - fired[0]!.time).toBe(2000);
    for (const { time, run } of fired) {
      expect(time % 2000).toBe(0);
      expect(run).toMatchObject({ task, parameters: { n: 1 }, priority: 1, namespace: "default", state: "PENDING" });
      // Started at its time, not before.
      expect(Date.parse(run.createdAt)).toBeGreaterThanOrEqual(time);
    }
    const last = fired.at(-1)!;
    const status = await waitFor("the schedule to record its last run", async () => {
      const s = await getSchedule(t.api.url, key);
      return s.lastRunId !== null && Date.parse(s.lastScheduleTime!) >= last.time ? s : undefined;
    });
    const recorded = (await firedRuns(t.api.url, task, key)).find((f) => f.run.id === status.lastRunId)!;
    expect(Date.parse(status.lastScheduleTime!)).toBe(recorded.time);
    expect(Date.parse(status.nextScheduleTime!)).toBe(recorded.time + 2000);

    const suspended = await putSchedule(t.api.url, key, { task, schedule: "*/2 * * * * *", parameters: { n: 1 }, priority: 1, suspend: true });
    expect(suspended.schedule.nextScheduleTime).toBeNull();
    const before = await firedRuns(t.api.url, task, key);
    const suspendedAt = Date.now();
    // Two times later the witness has fired both; the suspended schedule fired neither.
    await waitFor("the witness to fire two more times", async () => {
      const w = await firedRuns(t.api.url, `${task}-w`, witness);
      return w.filter((f) => f.time > suspendedAt).length >= 2;
    });
    expect(await firedRuns(t.api.url, task, key)).toEqual(before);
    await call(t.api.url, "DELETE", `/v1/schedules/${witness}`);
    await call(t.api.url, "DELETE", `/v1/schedules/${key}`);
  });

  it("Forbid skips the times that come while its run is unfinished, and fires again once it ended", async () => {
    const key = `forbid-${id()}`;
    await putSchedule(t.api.url, key, { task: "sched-gate", schedule: "* * * * * *", parameters: { dir: dir!.path }, concurrencyPolicy: "Forbid" });
    const [first] = await untilFired(t.api.url, "sched-gate", key, 1);
    await waitFor("the first run to start", () => existsSync(join(dir!.path, `${first!.run.id}.started`)));
    // Skipped times are logged; two of them, while the run is still going.
    const skips = new RegExp(`"schedule":"${key}".*concurrencyPolicy Forbid`, "g");
    await waitFor("two skipped times", () => (t.api.child.output().match(skips)?.length ?? 0) >= 2);
    expect((await firedRuns(t.api.url, "sched-gate", key)).map((f) => f.run.id)).toEqual([first!.run.id]);
    // And counted, for alerting on schedules that skip.
    const metrics = (await call(t.api.url, "GET", "/metrics")).body as string;
    const count = (outcome: string): number => Number(new RegExp(`offload_schedule_times_total\\{task="sched-gate",outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(count("forbidden")).toBeGreaterThanOrEqual(2);
    expect(count("started")).toBeGreaterThanOrEqual(1);

    writeFileSync(join(dir!.path, `${first!.run.id}.release`), "");
    const fired = await untilFired(t.api.url, "sched-gate", key, 2);
    const ended = await call(t.api.url, "GET", `/v1/runs/${first!.run.id}`);
    expect(ended.body).toMatchObject({ state: "COMPLETED", result: "released" });
    // The next run is for a time after the first one finished (give or take the second it finished in): none in between.
    expect(fired[1]!.time).toBeGreaterThanOrEqual(Math.floor(Date.parse(ended.body.finishedAt) / 1000) * 1000);
    expect(fired[1]!.time - fired[0]!.time).toBeGreaterThanOrEqual(3000);

    await call(t.api.url, "DELETE", `/v1/schedules/${key}`);
    for (const f of await firedRuns(t.api.url, "sched-gate", key)) writeFileSync(join(dir!.path, `${f.run.id}.release`), "");
  });

  it("Replace cancels its unfinished run (the task sees its signal abort) and starts the next", async () => {
    const key = `replace-${id()}`;
    await putSchedule(t.api.url, key, { task: "sched-gate", schedule: "*/2 * * * * *", parameters: { dir: dir!.path }, concurrencyPolicy: "Replace" });
    const [first] = await untilFired(t.api.url, "sched-gate", key, 1);
    await waitFor("the first run to start", () => existsSync(join(dir!.path, `${first!.run.id}.started`)));
    const fired = await untilFired(t.api.url, "sched-gate", key, 2);
    // No time skipped: the next one replaced it.
    expect(fired[1]!.time - fired[0]!.time).toBe(2000);
    await call(t.api.url, "DELETE", `/v1/schedules/${key}`);
    const cancelled = await waitFor("the first run to be CANCELLED", async () => {
      const r = await call(t.api.url, "GET", `/v1/runs/${first!.run.id}`);
      return r.body.state === "CANCELLED" ? r.body : undefined;
    });
    expect(cancelled.startedAt).not.toBeNull();
    await waitFor("the task to see its signal", () => existsSync(join(dir!.path, `${first!.run.id}.aborted`)));
    expect(await readFile(join(dir!.path, `${first!.run.id}.aborted`), "utf8")).toBe("RunCancelledError");
    for (const f of await firedRuns(t.api.url, "sched-gate", key)) writeFileSync(join(dir!.path, `${f.run.id}.release`), "");
  });
});
