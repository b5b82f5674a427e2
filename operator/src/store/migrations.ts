import type { Db } from "./db.js";

// Any fixed number: it names the lock that serialises migrations across replicas.
const MIGRATION_LOCK = 4_210_752_001;

/**
 * The schema, in order. Never edit a released entry: append a new one.
 * Each entry is a list of single statements (PGlite's parameterised protocol
 * takes one statement at a time).
 */
export const MIGRATIONS: readonly { version: number; name: string; statements: readonly string[] }[] = [
  {
    version: 1,
    name: "runs",
    statements: [
      `CREATE TABLE runs (
        id uuid PRIMARY KEY,
        task text NOT NULL,
        state text NOT NULL,
        parameters jsonb,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        scheduled_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        result jsonb,
        result_ref text,
        error jsonb,
        cache_key text,
        cached boolean NOT NULL DEFAULT false,
        idempotency_key text,
        worker_id text,
        dispatch integer NOT NULL DEFAULT 0,
        published_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      // NULLs are distinct, so only runs given a key take part in the uniqueness.
      `CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key)`,
      `CREATE INDEX runs_created ON runs (created_at DESC, id DESC)`,
      `CREATE INDEX runs_task_created ON runs (task, created_at DESC, id DESC)`,
      `CREATE INDEX runs_state_created ON runs (state, created_at DESC, id DESC)`,
      // The sweeper's query: small, because few runs stay SCHEDULED for long.
      `CREATE INDEX runs_scheduled_due ON runs (scheduled_at) WHERE state = 'SCHEDULED'`,
    ],
  },
  {
    version: 2,
    name: "execution semantics",
    statements: [
      "ALTER TABLE runs ADD COLUMN timeout_seconds double precision",
      "ALTER TABLE runs ADD COLUMN cache_expires_in_seconds double precision",
      // When a worker's AWAITING_RETRY named the next try's time: the sweeper dispatches it then.
      // NULL: the worker did not say, so it retries on its own and the dispatcher stays out of it.
      "ALTER TABLE runs ADD COLUMN retry_at timestamptz",
      "CREATE INDEX runs_retry_due ON runs (retry_at) WHERE state = 'AWAITING_RETRY'",
      // Cache hits: the newest completed, computed (not itself cached) run of a task with a key.
      "CREATE INDEX runs_cache_hit ON runs (task, cache_key, finished_at DESC) WHERE state = 'COMPLETED' AND cache_key IS NOT NULL AND NOT cached",
    ],
  },
  {
    version: 3,
    name: "retention",
    statements: [
      // Retention's scan: the finished runs of one state, oldest first.
      "CREATE INDEX runs_finished ON runs (state, finished_at) WHERE state IN ('COMPLETED', 'FAILED', 'CANCELLED')",
      // Whether a stored result is still pointed at (by a cached run) before retention removes it. Few runs have one.
      "CREATE INDEX runs_result_ref ON runs (result_ref) WHERE result_ref IS NOT NULL",
    ],
  },
  {
    version: 4,
    name: "namespaces",
    statements: [
      // The Kubernetes namespace a run was delayed from: reads, cancel and retry are authorized there.
      // Runs recorded before authorization existed belong to `default`, where the token and none modes put them.
      "ALTER TABLE runs ADD COLUMN namespace text NOT NULL DEFAULT 'default'",
      // An idempotency key is one caller's promise, so it is unique within a namespace: a key taken in another
      // namespace must neither hand that namespace's run out nor block this one.
      "DROP INDEX runs_idempotency_key",
      "CREATE UNIQUE INDEX runs_idempotency_key ON runs (namespace, idempotency_key)",
      // Listing runs is per namespace.
      "CREATE INDEX runs_namespace_created ON runs (namespace, created_at DESC, id DESC)",
    ],
  },
  {
    version: 5,
    name: "progress and trace context",
    statements: [
      // The task's last ctx.progress(...) report (RunProgress as JSON); NULL until it makes one.
      "ALTER TABLE runs ADD COLUMN progress jsonb",
      // The W3C trace context delay() was called in (TraceContext as JSON): every dispatch of the run carries it.
      "ALTER TABLE runs ADD COLUMN trace_context jsonb",
    ],
  },
  {
    version: 6,
    name: "flow control and task definitions",
    statements: [
      // 1 starts first, 5 last, among the runs that wait in the run API for a limit.
      "ALTER TABLE runs ADD COLUMN priority smallint NOT NULL DEFAULT 3",
      // Computed by the SDK at delay() from the task's concurrency and rate-limit keys; NULL: the whole task's limit.
      "ALTER TABLE runs ADD COLUMN concurrency_key text",
      "ALTER TABLE runs ADD COLUMN rate_limit_key text",
      // Why a PENDING run that waits in the run API (published_at IS NULL) has not been dispatched (WaitingFor as JSON).
      "ALTER TABLE runs ADD COLUMN waiting_for jsonb",
      // The runs held back by a limit, in the order they may start: small, because only held runs are in it.
      "CREATE INDEX runs_waiting ON runs (task, priority, created_at, id) WHERE state = 'PENDING' AND published_at IS NULL",
      // The last definition a worker registered for each task (TaskDefinition as JSON).
      `CREATE TABLE task_definitions (
        name text PRIMARY KEY,
        definition jsonb NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        registered_by text NOT NULL
      )`,
    ],
  },
  {
    version: 7,
    name: "admission",
    statements: [
      // The concurrency slots of a limited task: its runs dispatched and not finished, by key. Partial, so it holds
      // only runs in flight; counted from the records, a slot frees with every outcome and never leaks.
      "CREATE INDEX runs_open_slots ON runs (task, concurrency_key) WHERE state IN ('PENDING', 'RUNNING') AND published_at IS NOT NULL",
      // One row per start (dispatch) of a rate-limited task: the sliding window counts these. Only admission writes
      // it, so tasks without limits pay nothing; each pass drops the rows that left the window. key '' is the
      // whole task's (a real key has at least one character).
      `CREATE TABLE rate_limit_starts (
        task text NOT NULL,
        key text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now()
      )`,
      "CREATE INDEX rate_limit_starts_window ON rate_limit_starts (task, started_at)",
    ],
  },
  {
    version: 8,
    name: "schedules",
    statements: [
      // A cron schedule of runs (PUT /v1/schedules/:key, the TaskSchedule resource). Every replica's scheduler reads
      // it; each scheduled time fires one run whose idempotency key names the schedule and the time.
      `CREATE TABLE schedules (
        namespace text NOT NULL,
        key text NOT NULL,
        task text NOT NULL,
        schedule text NOT NULL,
        time_zone text NOT NULL,
        parameters jsonb,
        concurrency_policy text NOT NULL,
        suspend boolean NOT NULL DEFAULT false,
        starting_deadline_seconds integer,
        priority smallint,
        concurrency_key text,
        rate_limit_key text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        last_schedule_time timestamptz,
        last_run_id uuid,
        next_schedule_time timestamptz,
        PRIMARY KEY (namespace, key)
      )`,
      // The scheduler's look for due schedules and its wake-up time; suspended ones (NULL) are not in it.
      "CREATE INDEX schedules_next ON schedules (next_schedule_time) WHERE next_schedule_time IS NOT NULL",
    ],
  },
  {
    version: 9,
    name: "running-holds-a-slot",
    statements: [
      // A RUNNING run holds its concurrency slot even with no published_at: a worker can start a run whose
      // admission pass published it and then rolled back (a later publish failed, or the replica died before
      // COMMIT), and such a run must count. The slots' index follows the rule (store/admission.ts, OPEN).
      "DROP INDEX IF EXISTS runs_open_slots",
      "CREATE INDEX runs_open_slots ON runs (task, concurrency_key) WHERE state = 'RUNNING' OR (state = 'PENDING' AND published_at IS NOT NULL)",
    ],
  },
  {
    version: 10,
    name: "dispatch outbox",
    statements: [
      // A run due now is recorded PENDING with a row here, in the same statement; the row goes once JetStream has
      // confirmed the run's task message. So the answer to delay() waits for one INSERT, not for the publish and a
      // second UPDATE of the run (whose every index a state change rewrites); and a run whose publish was lost
      // (a crash, NATS away) is still here for the sweeper. Small: only runs being published are in it.
      `CREATE TABLE dispatch_outbox (
        run_id uuid PRIMARY KEY,
        recorded_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
];

/**
 * Brings the schema up to date. Safe when several replicas start at once: the
 * whole check-and-apply runs in one transaction holding an advisory lock, so
 * the second replica waits and then finds nothing to do.
 */
export async function migrate(db: Db): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ version: number }>("SELECT version FROM schema_migrations")).map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const sql of m.statements) await tx.query(sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
