// Retention of finished runs: the run API deletes COMPLETED, FAILED and
// CANCELLED runs (and their stored results) once they are older than
// OFFLOAD_RUN_RETENTION_DAYS / OFFLOAD_FAILED_RUN_RETENTION_DAYS by
// `finished_at`. The test plays the worker, and backdates `finished_at`
// through the events' `at`, so a retention of days expires at once and the
// runs meant to stay are far from their limit.
import { randomUUID } from "node:crypto";
import { RunSchema, type Run } from "@offload/sdk/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadApiConfig } from "../../operator/src/config/api.js";
import { findCacheHits } from "../../operator/src/store/cache.js";
import { openDb, type Db } from "../../operator/src/store/db.js";
import { migrate } from "../../operator/src/store/migrations.js";
import { deleteExpiredRuns } from "../../operator/src/store/retention.js";
import { startPostgres, waitFor, type PostgresServer } from "../support/index.js";
import { call, tempDir, useApiProcess } from "./helpers.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const taskName = (what: string): string => `${what}-${randomUUID().slice(0, 8)}`;
/** An event time `days` ago (a finish time, for the COMPLETED, FAILED and CANCELLED events). */
const daysAgo = (days: number): string => new Date(Date.now() - days * DAY_MS).toISOString();

describe("retention of finished runs", () => {
  const t = useApiProcess({
    OFFLOAD_RUN_RETENTION_DAYS: "1",
    OFFLOAD_FAILED_RUN_RETENTION_DAYS: "2.5",
    OFFLOAD_RETENTION_INTERVAL_SECONDS: "0.2",
  });

  const post = async (body: object): Promise<Run> => RunSchema.parse((await call(t.api.url, "POST", "/v1/runs", body)).body);
  const status = async (id: string): Promise<number> => (await call(t.api.url, "GET", `/v1/runs/${id}`)).status;
  const state = async (id: string): Promise<string> => (await call(t.api.url, "GET", `/v1/runs/${id}`)).body.state;
  const deleted = (what: string, id: string): Promise<true> => waitFor(`${what} (${id}) to be deleted`, async () => (await status(id)) === 404);

  it("deletes finished runs past retention, FAILED ones by their own, and keeps newer and unfinished runs", async () => {
    const task = taskName("ret");
    // The runs that stay, final before any of the expired ones exists: the pass that deletes
    // an expired run of a state has seen these of that state.
    const [fresh, failedRecently, pending, running, retrying, scheduled] = await Promise.all([
      post({ task }), post({ task }), post({ task }), post({ task }), post({ task }),
      post({ task, scheduledAt: new Date(Date.now() + DAY_MS).toISOString() }),
    ]);
    await t.probe.publishEvent({ runId: fresh.id, task, type: "COMPLETED", result: "fresh", at: daysAgo(0.9) });
    await t.probe.publishEvent({ runId: failedRecently.id, task, type: "FAILED", error: { type: "Error", message: "x" }, at: daysAgo(2) });
    await t.probe.publishEvent({ runId: running.id, task, type: "RUNNING", at: daysAgo(5) });
    await t.probe.publishEvent({ runId: retrying.id, task, type: "RUNNING", at: daysAgo(5) });
    await t.probe.publishEvent({ runId: retrying.id, task, type: "AWAITING_RETRY", error: { type: "Error", message: "x" }, at: daysAgo(5) });
    await t.probe.eventsSettled();

    const [completed, cancelled, failed] = await Promise.all([post({ task }), post({ task }), post({ task })]);
    await t.probe.publishEvent({ runId: completed.id, task, type: "COMPLETED", result: "old", at: daysAgo(1.1) });
    await t.probe.publishEvent({ runId: cancelled.id, task, type: "CANCELLED", at: daysAgo(1.1) });
    await t.probe.publishEvent({ runId: failed.id, task, type: "FAILED", error: { type: "Error", message: "x" }, at: daysAgo(2.6) });
    await Promise.all([deleted("the old COMPLETED run", completed.id), deleted("the old CANCELLED run", cancelled.id), deleted("the old FAILED run", failed.id)]);

    expect(await state(fresh.id)).toBe("COMPLETED");
    expect(await state(failedRecently.id)).toBe("FAILED");
    expect(await state(pending.id)).toBe("PENDING");
    expect(await state(running.id)).toBe("RUNNING");
    expect(await state(retrying.id)).toBe("AWAITING_RETRY");
    expect(await state(scheduled.id)).toBe("SCHEDULED");
    const listed = (await call(t.api.url, "GET", `/v1/runs?task=${task}`)).body.runs.map((r: Run) => r.id);
    expect(new Set(listed)).toEqual(new Set([fresh.id, failedRecently.id, pending.id, running.id, retrying.id, scheduled.id]));

    const metrics = (await call(t.api.url, "GET", "/metrics")).body as string;
    for (const s of ["COMPLETED", "FAILED", "CANCELLED"]) expect(metrics).toMatch(new RegExp(`offload_runs_deleted_total\\{state="${s}"\\} [1-9]`));
    expect(t.api.child.output()).toContain("deleted finished runs past retention");
  });

  it("removes a deleted run's stored result, but keeps one a retained cached run still borrows", async () => {
    const task = taskName("ret-obj");
    const cacheKey = `k-${randomUUID()}`;
    const big = { blob: "x".repeat(1000) };
    // The cache source: 5 s from its retention when the cached run borrows its result.
    const source = await post({ task, cacheKey });
    await t.probe.putResult(source.id, big);
    await t.probe.publishEvent({ runId: source.id, task, type: "COMPLETED", resultRef: source.id, at: new Date(Date.now() - DAY_MS + 5000).toISOString() });
    await waitFor("the source run to complete", async () => (await state(source.id)) === "COMPLETED");
    const cached = await post({ task, cacheKey });
    expect(cached).toMatchObject({ state: "COMPLETED", cached: true, resultRef: source.id });

    // A run with its result in the store, and a cancelled one whose worker stored a result anyway.
    const [plain, cancelled] = await Promise.all([post({ task }), post({ task })]);
    await Promise.all([t.probe.putResult(plain.id, big), t.probe.putResult(cancelled.id, big)]);
    await t.probe.publishEvent({ runId: plain.id, task, type: "COMPLETED", resultRef: plain.id, at: daysAgo(2) });
    await t.probe.publishEvent({ runId: cancelled.id, task, type: "CANCELLED", at: daysAgo(2) });

    await Promise.all([deleted("the plain run", plain.id), deleted("the cancelled run", cancelled.id), deleted("the cache source", source.id)]);
    // Removed, tombstones and all.
    expect(await t.probe.hasStoredResult(plain.id)).toBe(false);
    expect(await t.probe.hasStoredResult(cancelled.id)).toBe(false);
    // Still borrowed by the cached run, which answers its result.
    expect(await t.probe.hasStoredResult(source.id)).toBe(true);
    expect((await call(t.api.url, "GET", `/v1/runs/${cached.id}/result`)).body).toEqual({ id: cached.id, state: "COMPLETED", done: true, result: big, cached: true });
    // The source is gone, so the key is no cache hit any more.
    expect(await post({ task, cacheKey })).toMatchObject({ state: "PENDING", cached: false });
  });
});

describe("retention settings", () => {
  it("accepts fractional days, defaults the FAILED retention to the general one, and refuses negative values", () => {
    expect(loadApiConfig({})).toMatchObject({ runRetentionSeconds: 30 * 86_400, failedRunRetentionSeconds: 30 * 86_400, retentionIntervalMs: 300_000 });
    expect(loadApiConfig({ OFFLOAD_RUN_RETENTION_DAYS: "0.0001", OFFLOAD_RETENTION_INTERVAL_SECONDS: "0.5" })).toMatchObject({
      runRetentionSeconds: expect.closeTo(8.64, 6),
      failedRunRetentionSeconds: expect.closeTo(8.64, 6),
      retentionIntervalMs: 500,
    });
    expect(loadApiConfig({ OFFLOAD_RUN_RETENTION_DAYS: "0", OFFLOAD_FAILED_RUN_RETENTION_DAYS: "90" })).toMatchObject({
      runRetentionSeconds: 0,
      failedRunRetentionSeconds: 90 * 86_400,
    });
    expect(() => loadApiConfig({ OFFLOAD_RUN_RETENTION_DAYS: "-1" })).toThrow(/OFFLOAD_RUN_RETENTION_DAYS/);
    expect(() => loadApiConfig({ OFFLOAD_FAILED_RUN_RETENTION_DAYS: "soon" })).toThrow(/OFFLOAD_FAILED_RUN_RETENTION_DAYS/);
    expect(() => loadApiConfig({ OFFLOAD_RETENTION_INTERVAL_SECONDS: "0" })).toThrow(/OFFLOAD_RETENTION_INTERVAL_SECONDS/);
  });
});

// The store's half, on both databases: what one retention batch deletes and which result keys it lets go.
describe.each(["postgres", "pglite"] as const)("retention in the run store (%s)", (kind) => {
  let postgres: PostgresServer | undefined;
  let dir: { path: string; remove(): Promise<void> };
  let db: Db;

  beforeAll(async () => {
    dir = await tempDir("offload-retention-");
    let url: string | undefined;
    if (kind === "postgres") {
      postgres = await startPostgres();
      url = await postgres.createDatabase("retention");
    }
    db = await openDb(url, dir.path, (err) => console.warn(err));
    await migrate(db);
  });

  afterAll(async () => {
    await db?.close();
    await postgres?.stop();
    await dir?.remove();
  });

  /** Records a finished run directly: `finishedSecondsAgo` before now, its result under `resultRef`. */
  const insert = async (r: { task: string; state: string; finishedSecondsAgo?: number; cacheKey?: string; cached?: boolean; resultRef?: string }): Promise<string> => {
    const id = randomUUID();
    await db.query(
      `INSERT INTO runs (id, task, state, scheduled_at, finished_at, cache_key, cached, result_ref)
       VALUES ($1::uuid, $2, $3, now(), CASE WHEN $4::double precision IS NULL THEN NULL ELSE now() - make_interval(secs => $4::double precision) END, $5, $6, $7)`,
      [id, r.task, r.state, r.finishedSecondsAgo ?? null, r.cacheKey ?? null, r.cached ?? false, r.resultRef ?? null],
    );
    return id;
  };
  const exists = async (id: string): Promise<boolean> => (await db.query("SELECT 1 FROM runs WHERE id = $1::uuid", [id])).length === 1;
  const expire = (state: "COMPLETED" | "FAILED" | "CANCELLED", removed: string[] = [], limit = 1000) =>
    deleteExpiredRuns(db, { state, olderThanSeconds: 60, limit }, async (keys) => void removed.push(...keys));

  it("deletes only runs of the state past the age, in batches, never unfinished ones", async () => {
    const task = taskName("store");
    const old = await Promise.all([1, 2, 3].map(() => insert({ task, state: "COMPLETED", finishedSecondsAgo: 120 })));
    const young = await insert({ task, state: "COMPLETED", finishedSecondsAgo: 30 });
    const failed = await insert({ task, state: "FAILED", finishedSecondsAgo: 120 });
    // Unfinished runs are never candidates, whatever their timestamps say.
    const running = await insert({ task, state: "RUNNING", finishedSecondsAgo: 120 });

    const first = await expire("COMPLETED", [], 2);
    const second = await expire("COMPLETED", [], 2);
    expect(first.runs).toHaveLength(2);
    expect(new Set([...first.runs, ...second.runs])).toEqual(new Set(old));
    expect((await expire("COMPLETED")).runs).toEqual([]);
    for (const id of [young, failed, running]) expect(await exists(id)).toBe(true);
    expect((await expire("FAILED")).runs).toEqual([failed]);
  });

  it("lets a result key go only with the last run that points at it", async () => {
    const task = taskName("store-ref");
    const source = randomUUID();
    await db.query(
      `INSERT INTO runs (id, task, state, scheduled_at, finished_at, result_ref) VALUES ($1::uuid, $2, 'COMPLETED', now(), now() - interval '120 seconds', $1)`,
      [source, task],
    );
    const borrower = await insert({ task, state: "COMPLETED", finishedSecondsAgo: 30, cached: true, resultRef: source });
    // A small result (no ref): its own id goes too, in case a worker stored something under it.
    const small = await insert({ task, state: "CANCELLED", finishedSecondsAgo: 120 });

    const removed: string[] = [];
    expect((await expire("COMPLETED", removed)).runs).toEqual([source]);
    expect((await expire("CANCELLED", removed)).runs).toEqual([small]);
    expect(removed).toEqual([small]);
    await db.query("UPDATE runs SET finished_at = now() - interval '120 seconds' WHERE id = $1::uuid", [borrower]);
    expect(await expire("COMPLETED", removed)).toEqual({ runs: [borrower], resultKeys: [source] });
  });

  it("keeps the runs when the stored results cannot be removed", async () => {
    const task = taskName("store-fail");
    const id = await insert({ task, state: "COMPLETED", finishedSecondsAgo: 120 });
    await expect(
      deleteExpiredRuns(db, { state: "COMPLETED", olderThanSeconds: 60, limit: 10 }, async () => {
        throw new Error("NATS is down");
      }),
    ).rejects.toThrow(/NATS is down/);
    expect(await exists(id)).toBe(true);
    expect((await expire("COMPLETED")).runs).toEqual([id]);
  });

  it("lends no cached result from a run past retention", async () => {
    const task = taskName("store-cache");
    const cacheKey = "k";
    // Younger than the other tests' retention (60 s), so none of them deletes it.
    const source = await insert({ task, state: "COMPLETED", finishedSecondsAgo: 30, cacheKey });
    const hit = (retentionSeconds: number): Promise<string[]> =>
      findCacheHits(db, [{ task, cacheKey }], { retentionSeconds }).then((m) => [...m.values()].map((h) => h.sourceId));
    expect(await hit(0)).toEqual([source]);
    expect(await hit(60)).toEqual([source]);
    expect(await hit(20)).toEqual([]);
  });

  // Only PostgreSQL has concurrent transactions to race: PGlite is one connection.
  const onPostgres = kind === "postgres" ? it : undefined;
  onPostgres?.("does not delete a run while a cache hit is borrowing its result, and then keeps the result for the borrower", async () => {
    const task = taskName("store-race");
    const cacheKey = "k";
    const source = randomUUID();
    await db.query(
      `INSERT INTO runs (id, task, state, scheduled_at, finished_at, cache_key, result_ref)
       VALUES ($1::uuid, $2, 'COMPLETED', now(), now() - interval '120 seconds', $3, $1)`,
      [source, task, cacheKey],
    );
    let borrower = "";
    // The recording of a cached run, in its transaction: found the hit, not yet committed, while retention runs.
    await db.transaction(async (tx) => {
      const hits = await findCacheHits(tx, [{ task, cacheKey }], { retentionSeconds: 600 });
      expect([...hits.values()].map((h) => h.sourceId)).toEqual([source]);
      expect((await expire("COMPLETED")).runs).toEqual([]);
      borrower = (await tx.query<{ id: string }>(
        `INSERT INTO runs (id, task, state, scheduled_at, finished_at, cache_key, cached, result_ref)
         VALUES (gen_random_uuid(), $1, 'COMPLETED', now(), now(), $2, true, $3) RETURNING id`,
        [task, cacheKey, source],
      ))[0]!.id;
    });
    expect(await expire("COMPLETED")).toEqual({ runs: [source], resultKeys: [] });
    expect(await exists(borrower)).toBe(true);
  });
});
