import type { ConcurrencyLimit, RateLimit, Run, WaitingFor } from "@offload/sdk/internal";
import type { Db, Queryable } from "./db.js";
import { uuidArray } from "./ids.js";
import { toStored, type RunRow, type StoredRun } from "./rows.js";

/** The limits of one task, as its registered definition gives them. */
export interface TaskLimits {
  concurrency?: ConcurrencyLimit | undefined;
  rateLimit?: RateLimit | undefined;
}

/** What one admission pass did. */
export interface PassOutcome {
  /** Runs dispatched by this pass, as they are now (published, `waitingFor` cleared). */
  dispatched: StoredRun[];
  /** Held runs whose reason changed materially (kind, key or limit): news for the event streams. */
  reasonChanged: Run[];
  /** Runs of the task still held after the pass. */
  waiting: number;
  /** The held runs by what they wait for: `concurrency`, `rateLimit`, or `turn` (a key with room, not reached yet). */
  waitingByKind: Record<WaitingKind, number>;
  /** True when the pass stopped at its bound with room left: run another at once. */
  more: boolean;
  /** When a full rate window next frees a slot (ms since the epoch), if a held run waits for one. */
  wakeAt: number | undefined;
}

/** What a held run waits for, as the metrics count it. */
export type WaitingKind = WaitingFor["kind"] | "turn";

const noneWaiting = (): Record<WaitingKind, number> => ({ concurrency: 0, rateLimit: 0, turn: 0 });

/** Options of {@link admitTask}. */
export interface PassOptions {
  /** Most runs one pass dispatches (one transaction). @defaultValue 1000 */
  maxPerPass?: number;
  /**
   * Longest a pass may sit idle in its transaction (waiting for its publishes) before PostgreSQL ends its session,
   * which releases the task's lock. A replica frozen or cut off mid-pass would otherwise hold the lock, and stop
   * the task's admission on every replica, until TCP gives up on the connection (hours). Well above the publish
   * timeout (10 s), so a slow but healthy pass is not cut. PostgreSQL only. @defaultValue 30000
   */
  stallTimeoutMs?: number;
}

/**
 * The key a limit counts a run under, as stored: a limit without `keyed` is
 * the whole task's, so every run counts under the one key. `''` stands for
 * "the whole task" in SQL (a real key has at least one character), so keys
 * can be compared with `=` and joined by hash.
 */
const WHOLE_TASK = "";
const keyOf = (keyed: boolean | undefined, key: string | null): string => (keyed ? (key ?? WHOLE_TASK) : WHOLE_TASK);
const publicKey = (k: string): string | null => (k === WHOLE_TASK ? null : k);

/** The advisory lock (two 32-bit halves) that serializes the passes of one task across replicas. */
const LOCK_SPACE = 4_210_752_007 | 0;

// A run holds a concurrency slot while it is dispatched and unfinished. Computed from the records (never a
// counter), so every outcome frees its slot and nothing leaks across restarts. Any RUNNING run counts, published_at
// or not: a worker may start a run whose pass published it and then rolled back (a later publish of the pass failed,
// or the replica died before COMMIT), leaving it marked held. Same predicate as the index runs_open_slots.
const OPEN = "(state = 'RUNNING' OR (state = 'PENDING' AND published_at IS NOT NULL))";
// A run waits in the run API: recorded (or re-entered for a retry) and not yet dispatched.
const HELD = "state = 'PENDING' AND published_at IS NULL";

/**
 * One admission pass for `task`, in one transaction that holds the task's
 * advisory lock (replicas take turns; the lock is waited for, so a pass
 * always sees the previous one's commit). Reads how many runs of each
 * concurrency key are open and how many starts each rate key had in its
 * window, then the held runs of keys with room in turn order, `priority,
 * turn, created_at`, where `turn` numbers a key's runs of one priority (so
 * across keys dispatch is round-robin, and lower priority numbers go
 * first), at most a limit's worth per key; dispatches those the limits allow
 * (`publish` is called inside the transaction: a failed publish rolls the
 * whole pass back, and JetStream drops a second publish of the same dispatch
 * by its message id); records each start of a rate-limited task in
 * `rate_limit_starts`, and sets `waiting_for` on the held runs of full keys.
 * With no limits (a definition that dropped them), every held run goes.
 */
export async function admitTask(
  db: Db,
  task: string,
  limits: TaskLimits | undefined,
  publish: (runs: StoredRun[]) => Promise<void>,
  opts: PassOptions = {},
): Promise<PassOutcome> {
  const cap = opts.maxPerPass ?? 1000;
  return db.transaction(async (tx) => {
    // PGlite is one process with one session: no other replica waits on it, and its only session must never end.
    if (db.kind === "postgres") {
      await tx.query("SELECT set_config('idle_in_transaction_session_timeout', $3, true), pg_advisory_xact_lock($1::integer, hashtext($2))", [
        LOCK_SPACE,
        task,
        String(opts.stallTimeoutMs ?? 30_000),
      ]);
    } else await tx.query("SELECT pg_advisory_xact_lock($1::integer, hashtext($2))", [LOCK_SPACE, task]);
    // The time of this pass's starts and of its window: read once the lock is held. Not now(), the transaction's
    // start: a pass that waited for the previous one would record its starts in the past, and they would leave
    // the window early.
    const [clock] = await tx.query<{ now: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`);
    const at = clock!.now;
    const txNow = new Date(at).getTime();
    const conc = limits?.concurrency;
    const rate = limits?.rateLimit;
    if (!conc && !rate) return releaseAll(tx, task, cap, publish);

    const open = conc ? await openByKey(tx, task, conc.keyed) : new Map<string, number>();
    const window = rate ? await startsByKey(tx, task, rate, at) : new Map<string, { started: number; oldest: number }>();
    const concRoom = (k: string): number => (conc ? conc.limit - (open.get(k) ?? 0) : Infinity);
    const rateRoom = (k: string): number => (rate ? rate.limit - (window.get(k)?.started ?? 0) : Infinity);

    // Keys already full are left out of the read, so a tenant with a long queue costs nothing while it waits.
    const fullConc = conc ? [...open.keys()].filter((k) => concRoom(k) <= 0) : [];
    const fullRate = rate ? [...window.keys()].filter((k) => rateRoom(k) <= 0) : [];
    const wholeTaskFull = (conc && !conc.keyed && concRoom(WHOLE_TASK) <= 0) || (rate && !rate.keyed && rateRoom(WHOLE_TASK) <= 0);
    const perKey = Math.min(conc?.limit ?? cap, rate?.limit ?? cap, cap);
    const candidates = wholeTaskFull
      ? []
      : await tx.query<{ id: string; concurrency_key: string | null; rate_limit_key: string | null }>(
          `SELECT id, concurrency_key, rate_limit_key FROM (
             SELECT id, concurrency_key, rate_limit_key, priority, created_at,
               row_number() OVER (PARTITION BY concurrency_key, rate_limit_key, priority ORDER BY created_at, id) AS turn
             FROM runs
             WHERE task = $1 AND ${HELD}
               AND CASE WHEN $2::boolean THEN COALESCE(concurrency_key, '') ELSE '' END NOT IN (SELECT jsonb_array_elements_text($3::jsonb))
               AND CASE WHEN $4::boolean THEN COALESCE(rate_limit_key, '') ELSE '' END NOT IN (SELECT jsonb_array_elements_text($5::jsonb))
           ) w
           WHERE turn <= $6 ORDER BY priority, turn, created_at, id LIMIT $7`,
          [task, conc?.keyed ?? false, JSON.stringify(fullConc), rate?.keyed ?? false, JSON.stringify(fullRate), perKey, cap],
        );

    const admit: string[] = [];
    for (const c of candidates) {
      const ck = keyOf(conc?.keyed, c.concurrency_key);
      const rk = keyOf(rate?.keyed, c.rate_limit_key);
      if (concRoom(ck) <= 0 || rateRoom(rk) <= 0) continue;
      admit.push(c.id);
      open.set(ck, (open.get(ck) ?? 0) + 1);
      if (rate) {
        const w = window.get(rk) ?? { started: 0, oldest: txNow };
        window.set(rk, { ...w, started: w.started + 1 });
      }
    }

    const dispatched = await dispatch(tx, admit, publish, at);
    if (rate && dispatched.length) {
      // One row per start (of the runs that did go: one cancelled meanwhile did not); the window is counted from
      // these, so a retry's second start counts too.
      const keys = dispatched.map((r) => keyOf(rate.keyed, r.run.rateLimitKey));
      await tx.query(
        "INSERT INTO rate_limit_starts (task, key, started_at) SELECT $1, k, $3::timestamptz FROM jsonb_array_elements_text($2::jsonb) AS k",
        [task, JSON.stringify(keys), at],
      );
    }

    // Why the runs of each full key wait, as of now (after this pass's dispatches).
    const concReasons = conc
      ? [...open].filter(([k]) => concRoom(k) <= 0).map(([k, running]) => ({ key: k, wf: { kind: "concurrency", key: publicKey(k), limit: conc.limit, running } satisfies WaitingFor }))
      : [];
    let wakeAt: number | undefined;
    const rateReasons = rate
      ? [...window].filter(([k]) => rateRoom(k) <= 0).map(([k, w]) => {
          const nextSlotAt = w.oldest + rate.periodSeconds * 1000;
          wakeAt = Math.min(wakeAt ?? Infinity, nextSlotAt);
          const wf: WaitingFor = { kind: "rateLimit", key: publicKey(k), limit: rate.limit, periodSeconds: rate.periodSeconds, started: w.started, nextSlotAt: new Date(nextSlotAt).toISOString() };
          return { key: k, wf };
        })
      : [];
    const { waiting, waitingByKind, reasonChanged } = await setReasons(tx, task, conc?.keyed ?? false, rate?.keyed ?? false, concReasons, rateReasons);
    // Room left but the bound was hit: the next pass takes the rest.
    return { dispatched, reasonChanged, waiting, waitingByKind, more: dispatched.length >= cap && waiting > 0, wakeAt: waiting > 0 ? wakeAt : undefined };
  });
}

/** Open (dispatched, unfinished) runs of the task by concurrency key. */
async function openByKey(tx: Queryable, task: string, keyed: boolean): Promise<Map<string, number>> {
  const rows = await tx.query<{ key: string; n: number | string }>(
    `SELECT CASE WHEN $2::boolean THEN COALESCE(concurrency_key, '') ELSE '' END AS key, count(*) AS n
     FROM runs WHERE task = $1 AND ${OPEN} GROUP BY 1`,
    [task, keyed],
  );
  return new Map(rows.map((r) => [r.key, Number(r.n)]));
}

/** Starts of the task in the rate window by key, with the oldest (ms); drops the ledger's rows that left the window. */
async function startsByKey(tx: Queryable, task: string, rate: RateLimit, at: string): Promise<Map<string, { started: number; oldest: number }>> {
  await tx.query("DELETE FROM rate_limit_starts WHERE task = $1 AND started_at <= $3::timestamptz - make_interval(secs => $2::double precision)", [
    task,
    rate.periodSeconds,
    at,
  ]);
  const rows = await tx.query<{ key: string; n: number | string; oldest: Date | string }>(
    `SELECT CASE WHEN $2::boolean THEN key ELSE '' END AS key, count(*) AS n, min(started_at) AS oldest
     FROM rate_limit_starts WHERE task = $1 GROUP BY 1`,
    [task, rate.keyed],
  );
  return new Map(rows.map((r) => [r.key, { started: Number(r.n), oldest: new Date(r.oldest).getTime() }]));
}

/**
 * Marks the runs dispatched at `at` (the pass's clock, which its rate-window starts also carry; guarded: a run
 * cancelled meanwhile is left alone) and publishes them.
 */
async function dispatch(tx: Queryable, ids: string[], publish: (runs: StoredRun[]) => Promise<void>, at?: string): Promise<StoredRun[]> {
  if (ids.length === 0) return [];
  const rows = await tx.query<RunRow>(
    `UPDATE runs SET published_at = COALESCE($2::timestamptz, now()), updated_at = now(), waiting_for = NULL
     WHERE id = ANY($1::uuid[]) AND ${HELD} RETURNING *`,
    [uuidArray(ids), at ?? null],
  );
  // In the order admitted (RETURNING has none): JetStream hands them to workers in the order published.
  const order = new Map(ids.map((id, i) => [id, i]));
  const runs = rows.map(toStored).sort((a, b) => order.get(a.run.id)! - order.get(b.run.id)!);
  if (runs.length) await publish(runs);
  return runs;
}

/** Dispatches held runs of a task that has no limit (any more), oldest first within priority. */
async function releaseAll(tx: Queryable, task: string, cap: number, publish: (runs: StoredRun[]) => Promise<void>): Promise<PassOutcome> {
  const rows = await tx.query<{ id: string }>(`SELECT id FROM runs WHERE task = $1 AND ${HELD} ORDER BY priority, created_at, id LIMIT $2`, [task, cap]);
  const dispatched = await dispatch(
    tx,
    rows.map((r) => r.id),
    publish,
  );
  const waiting = rows.length >= cap ? 1 : 0;
  return { dispatched, reasonChanged: [], waiting, waitingByKind: { ...noneWaiting(), turn: waiting }, more: rows.length >= cap, wakeAt: undefined };
}

/**
 * Sets `waiting_for` on the held runs of full keys where it changed
 * materially (kind, key or limit: not every tick of `running`), so a reader
 * sees why a run waits without a write per run per pass. A run whose
 * concurrency key is full waits for that; else for its rate key. Answers how
 * many runs are held, and those whose reason changed.
 */
async function setReasons(
  tx: Queryable,
  task: string,
  concKeyed: boolean,
  rateKeyed: boolean,
  conc: { key: string; wf: WaitingFor }[],
  rate: { key: string; wf: WaitingFor }[],
): Promise<{ waiting: number; waitingByKind: Record<WaitingKind, number>; reasonChanged: Run[] }> {
  // The held runs' keys and current reasons are read and compared here, then only the runs whose reason changes
  // are written: one UPDATE joining every held run to the reasons in SQL cost ~20 times more with thousands held,
  // though it wrote nothing.
  const byConc = new Map(conc.map((c) => [c.key, c.wf]));
  const byRate = new Map(rate.map((r) => [r.key, r.wf]));
  const held = await tx.query<{ id: string; ck: string | null; rk: string | null; old: WaitingFor | null }>(
    `SELECT id, concurrency_key AS ck, rate_limit_key AS rk, waiting_for AS old FROM runs WHERE task = $1 AND ${HELD}`,
    [task],
  );
  const changes: { id: string; wf: WaitingFor }[] = [];
  const waitingByKind = noneWaiting();
  for (const h of held) {
    const wf = byConc.get(keyOf(concKeyed, h.ck)) ?? byRate.get(keyOf(rateKeyed, h.rk));
    waitingByKind[wf?.kind ?? "turn"]++;
    if (!wf) continue;
    const old = h.old;
    if (old && old.kind === wf.kind && old.key === wf.key && old.limit === wf.limit) continue;
    changes.push({ id: h.id, wf });
  }
  if (changes.length === 0) return { waiting: held.length, waitingByKind, reasonChanged: [] };
  const rows = await tx.query<RunRow>(
    `UPDATE runs SET waiting_for = v.wf, updated_at = now()
     FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, wf jsonb)
     WHERE runs.id = v.id AND runs.id = ANY($2::uuid[]) AND runs.state = 'PENDING' AND runs.published_at IS NULL
     RETURNING runs.*`,
    [JSON.stringify(changes), uuidArray(changes.map((c) => c.id))],
  );
  return { waiting: held.length, waitingByKind, reasonChanged: rows.map((r) => toStored(r).run) };
}

/** The tasks that have held runs (at start: a task whose limits are gone must still let its runs go). */
export async function tasksWithHeldRuns(db: Queryable): Promise<string[]> {
  const rows = await db.query<{ task: string }>(`SELECT DISTINCT task FROM runs WHERE ${HELD}`);
  return rows.map((r) => r.task);
}
