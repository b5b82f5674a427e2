import { isTerminal, scheduleRunKey, type CreateRunBody, type Run } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import { getRunState } from "../store/runs.js";
import { advanceSchedule, dueSchedules, earliestScheduleTime, type ScheduleRow } from "../store/schedules.js";
import { countTimes, latestTime, nextTime, scheduleSeed, type CronSpec } from "./cron.js";
import type { CancelOutcome } from "./lifecycle.js";
import type { Submitted } from "./submit.js";

/** What the scheduler does with the runs it starts; the run API gives it its own submit and cancel paths. */
export interface SchedulerDeps {
  db: Db;
  /** Records and dispatches runs as `POST /v1/runs` does (limits, admission and events included). */
  submit(bodies: readonly CreateRunBody[]): Promise<Submitted[]>;
  /** Cancels a run as `POST /v1/runs/:id/cancel` does (for `concurrencyPolicy: Replace`). */
  cancel(runId: string): Promise<CancelOutcome>;
  /** Called with each run a schedule started that this replica created (not an idempotent replay). */
  onFired?(run: Run): void;
  /** Called with each run `Replace` cancelled. */
  onCancelled?(run: Run): void;
  /** Counts scheduled times by what became of them, as the replica that decided it saw them (each time is counted once). */
  onTimes?(task: string, outcome: ScheduledTimeOutcome, count: number): void;
}

/** Options of {@link startScheduler}. */
export interface SchedulerOptions {
  /**
   * The longest the loop sleeps between two looks at the schedules, in ms: it
   * wakes at the earliest next time of any schedule, but no later than this,
   * so a schedule PUT on another replica (or a time changed there) is seen
   * within it. @defaultValue 1000
   */
  maxSleepMs?: number;
  /** Most due schedules read per query (fired a few at a time, then read again). @defaultValue 100 */
  batch?: number;
  /** The clock (ms since the epoch); injectable for tests. @defaultValue Date.now */
  now?: () => number;
}

/** A running scheduler loop. */
export interface Scheduler {
  /** Looks at the schedules now (after a PUT on this replica: the new schedule may be due sooner than the loop's wake-up). */
  poke(): void;
  /** Stops the loop; resolves once the pass in progress (if any) has finished. Safe to call twice. */
  stop(): Promise<void>;
}

/** Missed times counted at most this far back, for the log line of a schedule that was down long. */
const COUNT_CAP = 10_000;
/** Due schedules fired at once (each is a few statements and a publish). */
const PARALLEL = 8;

/**
 * What firing one due schedule did. `missed` counts the times skipped because
 * no replica looked at them in time (older than the latest due, or past the
 * starting deadline).
 */
type Firing =
  | { kind: "fired"; time: Date; run: Run; created: boolean; advanced: boolean; missed: number }
  | { kind: "missed-deadline"; time: Date; missed: number }
  | { kind: "forbidden"; time: Date; missed: number; activeRunId: string };

/** What became of scheduled times, for a metric: a run started, missed (see {@link Firing}), or skipped by `Forbid`. */
export type ScheduledTimeOutcome = "started" | "missed" | "forbidden";

/**
 * Fires cron schedules: every replica runs one, and they need not agree on
 * anything. A due schedule's latest due time `t` starts one run through
 * `submit` with the idempotency key `scheduleRunKey(key, t)` in the schedule's
 * namespace, so replicas firing the same time make one run; then the schedule
 * advances by compare-and-set (see {@link advanceSchedule}), so it advances
 * once. A replica that dies between the two leaves the time due: whoever looks
 * next submits again (and gets the same run) and advances it.
 *
 * As a CronJob: of the times passed while no replica looked (all were down),
 * only the latest fires, and only if at most `startingDeadlineSeconds` late
 * (unset: however late); the older ones are skipped and counted in the log.
 * `Forbid` skips a time while the run started last has not finished;
 * `Replace` cancels that run, then fires.
 */
export function startScheduler(deps: SchedulerDeps, opts: SchedulerOptions, log: Logger): Scheduler {
  const maxSleepMs = opts.maxSleepMs ?? 1000;
  const batch = opts.batch ?? 100;
  const now = opts.now ?? Date.now;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  // A database that is away would log a warning at every pass: say it once, and once when it is back.
  let failing = false;

  const fire = async (row: ScheduleRow): Promise<Firing | undefined> => {
    const spec: CronSpec = { schedule: row.schedule, timeZone: row.time_zone, seed: scheduleSeed(row.namespace, row.key) };
    const due = new Date(row.next_schedule_time!);
    const at = new Date(now());
    // The latest scheduled time that has come; the due time itself when the clock read it earlier than the query did.
    const latest = latestTime(spec, at);
    const time = latest && latest.getTime() > due.getTime() ? latest : due;
    const older = countTimes(spec, due, time, COUNT_CAP);
    const advance = (fired: { time: Date; runId: string } | undefined): Promise<boolean> =>
      advanceSchedule(deps.db, {
        namespace: row.namespace,
        key: row.key,
        read: { schedule: row.schedule, timeZone: row.time_zone, next: due },
        fired,
        next: nextTime(spec, time),
      });

    const lateSeconds = (at.getTime() - time.getTime()) / 1000;
    if (row.starting_deadline_seconds !== null && lateSeconds > row.starting_deadline_seconds) {
      return (await advance(undefined)) ? { kind: "missed-deadline", time, missed: older + 1 } : undefined;
    }
    // A time fired already: a replica that read the row before another advanced it, and came late enough to fire the
    // next time too, recorded that time's run without moving the row. Its run is this time's own: neither Forbid
    // (skip it) nor Replace (cancel it) is about it; submitting again only finds it.
    const firedAlready = row.last_schedule_time !== null && new Date(row.last_schedule_time).getTime() >= time.getTime();
    if (row.last_run_id !== null && row.concurrency_policy !== "Allow" && !firedAlready) {
      const state = await getRunState(deps.db, row.last_run_id);
      // Unknown: retention deleted it, so it finished long ago.
      if (state !== undefined && !isTerminal(state)) {
        if (row.concurrency_policy === "Forbid") {
          return (await advance(undefined)) ? { kind: "forbidden", time, missed: older, activeRunId: row.last_run_id } : undefined;
        }
        const out = await deps.cancel(row.last_run_id);
        if (out.kind === "cancelled") deps.onCancelled?.(out.run);
        log.info({ schedule: row.key, namespace: row.namespace, runId: row.last_run_id, outcome: out.kind }, "schedule replaces its unfinished run");
      }
    }
    const body: CreateRunBody = { task: row.task, idempotencyKey: scheduleRunKey(row.key, time), namespace: row.namespace };
    if (row.parameters !== null) body.parameters = row.parameters;
    if (row.priority !== null) body.priority = row.priority;
    if (row.concurrency_key !== null) body.concurrencyKey = row.concurrency_key;
    if (row.rate_limit_key !== null) body.rateLimitKey = row.rate_limit_key;
    const [submitted] = await deps.submit([body]);
    const { run, created } = submitted!;
    if (created) deps.onFired?.(run);
    const advanced = await advance({ time, runId: run.id });
    return { kind: "fired", time, run, created, advanced, missed: older };
  };

  const report = (row: ScheduleRow, f: Firing): void => {
    const where = { schedule: row.key, namespace: row.namespace, task: row.task, scheduledTime: f.time.toISOString() };
    // Both replicas fire a due time: the one that created the run reports it started; the one that advanced the
    // schedule past the time (the only one that knows the older times were not fired) reports what was missed.
    if (f.kind === "fired" && f.created) {
      log.info({ ...where, runId: f.run.id }, "schedule started a run");
      deps.onTimes?.(row.task, "started", 1);
    }
    if (f.kind === "forbidden") {
      log.info({ ...where, activeRunId: f.activeRunId }, "schedule skipped a time: concurrencyPolicy Forbid and its last run has not finished");
      deps.onTimes?.(row.task, "forbidden", 1);
    }
    if (f.missed === 0 || (f.kind === "fired" && !f.advanced)) return;
    const why = f.kind === "missed-deadline" ? "the latest was past startingDeadlineSeconds" : "only the latest missed time fires";
    log.warn({ ...where, skipped: f.missed }, `schedule skipped ${f.missed} missed time(s): ${why}`);
    deps.onTimes?.(row.task, "missed", f.missed);
  };

  /** Fires what is due; answers how many schedules could not be fired (they stay due). */
  const fireDue = async (): Promise<number> => {
    let failed = 0;
    for (;;) {
      const rows = await dueSchedules(deps.db, new Date(now()), batch);
      let failedHere = 0;
      for (let i = 0; i < rows.length && !stopped; i += PARALLEL) {
        await Promise.all(
          rows.slice(i, i + PARALLEL).map(async (row) => {
            try {
              const f = await fire(row);
              if (f) report(row, f);
            } catch (err) {
              // One schedule's trouble (its run refused, the database blinking) must not hold up the others: it stays due.
              failedHere++;
              log.warn({ err, schedule: row.key, namespace: row.namespace }, "could not fire a schedule; trying again shortly");
            }
          }),
        );
      }
      failed += failedHere;
      // A full batch that all failed would be read again as it is: leave it to the next pass.
      if (rows.length < batch || stopped || failedHere === rows.length) return failed;
    }
  };

  const pass = async (): Promise<void> => {
    let sleep = maxSleepMs;
    try {
      const failed = await fireDue();
      const earliest = await earliestScheduleTime(deps.db);
      // A schedule that failed is still due: retried after the full pause, not in a tight loop.
      if (earliest && failed === 0) sleep = Math.min(maxSleepMs, Math.max(0, earliest.getTime() - now()));
      if (failing) log.info("scheduler can read the schedules again");
      failing = false;
    } catch (err) {
      if (!failing) log.warn({ err }, "scheduler could not read the schedules; trying again shortly");
      failing = true;
    }
    running = undefined;
    if (again) {
      again = false;
      sleep = 0;
    }
    arm(sleep);
  };

  const arm = (ms: number): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void (running = pass()), ms);
  };

  arm(0);
  return {
    poke() {
      if (running) again = true;
      else arm(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
