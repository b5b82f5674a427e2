// What the schedule tests share: reading the runs a schedule started, by the idempotency key each scheduled time gives
// its run (`schedule:<key>:<ISO time>`), and putting schedules.
import { RunSchema, ScheduleSchema, scheduleRunKey, type PutScheduleBody, type Run, type Schedule } from "@offload/sdk/internal";
import { expect } from "vitest";
import { waitFor } from "../support/index.js";
import { call } from "../api/helpers.js";

/** One run a schedule started, with the scheduled time it was for (ms since the epoch). */
export interface FiredRun {
  time: number;
  run: Run;
}

/**
 * The runs of `task` (in `namespace`) started by schedule `key`, by scheduled time. Checks that each one's idempotency
 * key is exactly the one its time gives (a whole ISO time), so a time misread fails the test.
 */
export async function firedRuns(api: string, task: string, key: string, namespace = "default"): Promise<FiredRun[]> {
  const res = await call(api, "GET", `/v1/runs?task=${encodeURIComponent(task)}&namespace=${namespace}&limit=500`);
  expect(res.status).toBe(200);
  const prefix = `schedule:${key}:`;
  const runs = (res.body.runs as unknown[]).map((r) => RunSchema.parse(r)).filter((run) => run.idempotencyKey?.startsWith(prefix));
  const fired = runs.map((run) => {
    const time = Date.parse(run.idempotencyKey!.slice(prefix.length));
    expect(run.idempotencyKey).toBe(scheduleRunKey(key, new Date(time)));
    return { time, run };
  });
  return fired.sort((a, b) => a.time - b.time);
}

/** Waits until schedule `key` has started at least `n` runs; answers them all. */
export function untilFired(api: string, task: string, key: string, n: number, timeoutMs = 20_000): Promise<FiredRun[]> {
  return waitFor(`${n} runs of schedule ${key}`, async () => {
    const runs = await firedRuns(api, task, key);
    return runs.length >= n ? runs : undefined;
  }, timeoutMs, 100);
}

/** PUTs schedule `key`; answers the status and the schedule (parsed: the answer must be one). */
export async function putSchedule(api: string, key: string, body: PutScheduleBody): Promise<{ status: number; schedule: Schedule }> {
  const res = await call(api, "PUT", `/v1/schedules/${key}`, body);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return { status: res.status, schedule: ScheduleSchema.parse(res.body) };
}

/** GETs schedule `key` of `namespace`. */
export async function getSchedule(api: string, key: string, namespace = "default"): Promise<Schedule> {
  const res = await call(api, "GET", `/v1/schedules/${key}?namespace=${namespace}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return ScheduleSchema.parse(res.body);
}
