// Dependencies blinking under load (issue 11): the run API must outlive a
// PostgreSQL restart and a nats-server restart, say so on /readyz, answer
// submissions without waiting out NATS, and finish every run it accepted.
import { join } from "node:path";
import { ErrorBodySchema } from "@offload/sdk/internal";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { call } from "../api/helpers.js";
import { killAll, startStack, stopSharedPostgres, waitFor, type Stack } from "../support/index.js";

const FIXTURES = join(import.meta.dirname, "../e2e/fixtures/tasks.mjs");

/** Ids of the runs of `add` that are COMPLETED. */
async function completed(stack: Stack): Promise<Set<string>> {
  const done = new Set<string>();
  let cursor: string | null = null;
  do {
    const res = await call(stack.apiUrl, "GET", `/v1/runs?task=add&state=COMPLETED&limit=500${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status).toBe(200);
    for (const r of res.body.runs as { id: string }[]) done.add(r.id);
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return done;
}

/** Waits until every run in `ids` is COMPLETED. */
async function allCompleted(stack: Stack, ids: Set<string>): Promise<void> {
  await waitFor(`${ids.size} accepted runs to complete`, async () => {
    const done = await completed(stack);
    return [...ids].every((id) => done.has(id));
  }, 90_000, 250);
}

const alive = (stack: Stack): boolean => stack.api.proc.exitCode === null && stack.api.proc.signalCode === null;

const count = (text: string, needle: string): number => text.split(needle).length - 1;

/**
 * Submits runs of `add` one after another until `stop()`, single and in
 * batches, with and without idempotency keys: collects the accepted ids and
 * every status that was neither 2xx nor the 503 a dependency outage gives.
 */
function submitUntilStopped(stack: Stack): {
  unavailableSoFar(): number;
  stop(): Promise<{ accepted: Set<string>; unavailable: number; unexpected: string[] }>;
} {
  const accepted = new Set<string>();
  const unexpected: string[] = [];
  let unavailable = 0;
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const keyed = i % 2 === 0 ? { idempotencyKey: `outage-${process.pid}-${Date.now()}-${i}` } : {};
      const res =
        i % 5 === 4
          ? await call(stack.apiUrl, "POST", "/v1/runs/batch", { runs: [{ task: "add", parameters: { a: i, b: 1 }, ...keyed }, { task: "add", parameters: { a: i, b: 2 } }] })
          : await call(stack.apiUrl, "POST", "/v1/runs", { task: "add", parameters: { a: i, b: 0 }, ...keyed });
      if (res.status === 200 || res.status === 202) {
        for (const r of (res.body.runs ?? [res.body]) as { id: string }[]) accepted.add(r.id);
      } else if (res.status === 503 && ErrorBodySchema.parse(res.body).code === "OFFLOAD_UNAVAILABLE") {
        unavailable++;
      } else {
        unexpected.push(`${res.status} ${JSON.stringify(res.body)}`);
      }
    }
  })();
  return {
    unavailableSoFar: () => unavailable,
    async stop() {
      stopped = true;
      await loop;
      return { accepted, unavailable, unexpected };
    },
  };
}

describe("dependency outages", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });
  afterAll(async () => {
    await stopSharedPostgres();
    await killAll();
  });

  it("outlives a PostgreSQL restart (pg_ctl -m fast) under load: /readyz 503 then 200, every accepted run completes", async () => {
    // A short sweep interval keeps a sweeper transaction open (across its NATS publish) most of the time: the widest window.
    stack = await startStack({ db: "postgres", apiEnv: { OFFLOAD_REPUBLISH_AFTER_SECONDS: "1" } });
    const s = stack;
    await s.startWorker({ module: FIXTURES, tasks: ["add"], concurrency: 8 });
    const load = submitUntilStopped(s);
    await waitFor("some runs accepted before the restart", async () => (await completed(s)).size >= 10, 30_000, 100);

    let sawUnready = false;
    await s.postgres!.restart(async () => {
      // While PostgreSQL is down: the API says it is not ready, and is still there to say it.
      await waitFor("/readyz to answer 503", async () => (await call(s.apiUrl, "GET", "/readyz")).status === 503, 15_000, 50);
      sawUnready = true;
      expect(alive(s)).toBe(true);
      // PostgreSQL stays down until a submission has been told so: a restart quicker than one request
      // would otherwise leave nothing to see (a CI run once lost that race).
      await waitFor("a submission to get 503 OFFLOAD_UNAVAILABLE", async () => load.unavailableSoFar() > 0, 15_000, 50);
    });
    await waitFor("/readyz to answer 200 again", async () => (await call(s.apiUrl, "GET", "/readyz")).status === 200, 30_000, 100);
    // A few more after it came back, through the connections the pool opened anew.
    const before = (await completed(s)).size;
    await waitFor("runs accepted after the restart", async () => (await completed(s)).size >= before + 10, 30_000, 100);
    const { accepted, unavailable, unexpected } = await load.stop();

    expect(sawUnready).toBe(true);
    // Submissions while PostgreSQL was away were told to come back (503 OFFLOAD_UNAVAILABLE), none got a 500.
    expect(unexpected).toEqual([]);
    expect(unavailable).toBeGreaterThan(0);
    expect(accepted.size).toBeGreaterThan(20);
    await allCompleted(s, accepted);
    expect(alive(s), s.api.output().slice(-3000)).toBe(true);
    const out = s.api.output();
    expect(out).not.toContain("Unhandled 'error' event");
    // One line each way, not one per probe.
    expect(count(out, "not ready: a dependency does not answer")).toBe(1);
    expect(count(out, "ready again: the database and NATS answer")).toBe(1);
  }, 180_000);

  it("answers submissions during a nats-server restart before NATS is back, and runs them once it is", async () => {
    stack = await startStack({ db: "postgres", apiEnv: { OFFLOAD_REPUBLISH_AFTER_SECONDS: "1" } });
    const s = stack;
    const worker = await s.startWorker({ module: FIXTURES, tasks: ["add", "slow"], concurrency: 4 });
    const first = await call(s.apiUrl, "POST", "/v1/runs", { task: "add", parameters: { a: 1, b: 1 } });
    expect(first.status).toBe(202);
    await allCompleted(s, new Set([first.body.id as string]));
    // Runs a worker is in the middle of when NATS goes: their outcomes are published while it is down (or while
    // the worker reconnects), and must be retried, not lost.
    const slow: string[] = [];
    for (let i = 0; i < 3; i++) slow.push((await call(s.apiUrl, "POST", "/v1/runs", { task: "slow", parameters: { ms: 1500 } })).body.id as string);
    await waitFor("the slow runs to start", async () => {
      const states = await Promise.all(slow.map(async (id) => (await call(s.apiUrl, "GET", `/v1/runs/${id}`)).body.state as string));
      return states.every((st) => st !== "SCHEDULED" && st !== "PENDING");
    }, 30_000, 50);

    const accepted = new Set<string>([first.body.id as string]);
    const answeredWhileDown: number[] = [];
    let natsBack = false;
    await s.nats.restart(async () => {
      // Down for two seconds at least, as in the campaign's restart: longer than the slow runs have left.
      const outage = new Promise((resolve) => setTimeout(resolve, 2000));
      // The answers must come while NATS is still down. The bound only keeps a broken API from holding the test:
      // it is below the 10 s publish timeout that a submission used to wait out.
      const bound = new Promise<"bound">((resolve) => setTimeout(() => resolve("bound"), 8000).unref());
      const ready = await call(s.apiUrl, "GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body.message).toMatch(/nats: /);
      const submissions = (async () => {
        for (let i = 0; i < 10; i++) {
          const res =
            i % 3 === 2
              ? await call(s.apiUrl, "POST", "/v1/runs/batch", { runs: [{ task: "add", parameters: { a: i, b: 1 } }, { task: "add", parameters: { a: i, b: 2 } }] })
              : await call(s.apiUrl, "POST", "/v1/runs", { task: "add", parameters: { a: i, b: 0 }, ...(i % 2 ? { idempotencyKey: `blink-${i}` } : {}) });
          if (!natsBack) answeredWhileDown.push(res.status);
          for (const r of (res.body.runs ?? [res.body]) as { id: string }[]) accepted.add(r.id);
        }
      })();
      await Promise.race([submissions, bound]);
      await outage;
      natsBack = true;
    });
    // All ten were answered, 202 (recorded, to be published by the sweeper), before NATS was started again.
    expect(answeredWhileDown).toEqual(Array(10).fill(202));
    expect(accepted.size).toBe(1 + 10 + 3);

    await waitFor("/readyz to answer 200 again", async () => (await call(s.apiUrl, "GET", "/readyz")).status === 200, 30_000, 100);
    await allCompleted(s, accepted);
    for (const id of slow) {
      const run = await waitFor(`slow run ${id} to finish`, async () => {
        const r = (await call(s.apiUrl, "GET", `/v1/runs/${id}`)).body;
        return r.state === "COMPLETED" ? r : undefined;
      }, 60_000, 100);
      expect(run.result).toMatchObject({ attempt: expect.any(Number) });
    }
    // Neither the API nor the worker died of the blink; a submission now is dispatched at once again.
    expect(alive(s), s.api.output().slice(-3000)).toBe(true);
    expect(worker.child.proc.exitCode, worker.child.output().slice(-3000)).toBe(null);
    const after = await call(s.apiUrl, "POST", "/v1/runs", { task: "add", parameters: { a: 2, b: 2 } });
    expect(after.status).toBe(202);
    await allCompleted(s, new Set([after.body.id as string]));
    const out = s.api.output();
    expect(out).toContain("NATS connection lost");
    expect(out).toContain("NATS connection back");
    // Published by the call itself once NATS was back (the state in its answer may already be the sweeper's, which
    // republishes runs older than 1 s here), not left to the sweeper for want of a connection.
    expect(out.slice(out.lastIndexOf("NATS connection back"))).not.toContain("could not publish runs");
    expect(count(out, "not ready: a dependency does not answer")).toBe(1);
    expect(count(out, "ready again: the database and NATS answer")).toBe(1);
  }, 180_000);
});
