import { CronExpressionParser, type CronExpression } from "cron-parser";

/** The time zone of a schedule that names none. */
export const DEFAULT_TIME_ZONE = "UTC";

/** The two fields that say when a schedule fires. */
export interface CronSpec {
  /** Five fields (minute first) or six (second first), or a predefined `@hourly`, `@daily` … */
  readonly schedule: string;
  /** An IANA time zone the fields are read in. */
  readonly timeZone: string;
  /**
   * What an `H` field (cron-parser's hashed value, `H * * * *`) is derived
   * from: the schedule's namespace and key, so each schedule keeps its own
   * minute and schedules spread. Unset: the expression itself.
   */
  readonly seed?: string;
}

/** A cron expression or time zone that cannot be read, naming the field at fault. */
export class CronSpecError extends Error {
  readonly field: "schedule" | "timeZone";
  constructor(field: "schedule" | "timeZone", message: string) {
    super(message);
    this.name = "CronSpecError";
    this.field = field;
  }
}

// cron-parser counts DST with luxon, which accepts any name Intl knows; checked first so a bad zone is named as one.
function checkTimeZone(timeZone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    throw new CronSpecError("timeZone", `${JSON.stringify(timeZone)} is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)`);
  }
}

function parse(spec: CronSpec, currentDate: Date): CronExpression {
  // Always seeded: unseeded, cron-parser draws `H` at random at every parse, so each replica (and each firing) would
  // compute other times, firing one time twice under two idempotency keys, or at a different minute every hour.
  return CronExpressionParser.parse(spec.schedule.trim(), { currentDate, tz: spec.timeZone, hashSeed: spec.seed || spec.schedule });
}

/** The seed of a stored schedule's `H` fields (see {@link CronSpec.seed}). */
export const scheduleSeed = (namespace: string, key: string): string => `${namespace}/${key}`;

/**
 * Throws {@link CronSpecError} unless `spec` can be read and fires at least
 * once after `now`. cron-parser refuses impossible dates (`0 0 30 2 *`) while
 * parsing, and gives up searching for a next time on combinations that never
 * occur; both are the caller's to fix, so both are errors here.
 */
export function checkCronSpec(spec: CronSpec, now: Date): void {
  checkTimeZone(spec.timeZone);
  if (spec.schedule.trim() === "") throw new CronSpecError("schedule", "the cron expression is empty");
  try {
    parse(spec, now).next();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CronSpecError(
      "schedule",
      `${JSON.stringify(spec.schedule)} is not a cron expression this API reads (${reason}); use five fields (minute hour ` +
        "day-of-month month day-of-week), six with seconds first, or @hourly, @daily …",
    );
  }
}

/**
 * How much later {@link nextTime} asks again where cron-parser errs: few tries, as one that gives up costs it most of
 * a second of CPU.
 */
const RETRY_LATER_MS = [1000, 60_000, 3_600_000, 6 * 3_600_000, 86_400_000];

/** The first time `spec` fires strictly after `after`, or null when it never fires again. `spec` must have passed {@link checkCronSpec}. */
export function nextTime(spec: CronSpec, after: Date): Date | null {
  // Around a daylight-saving change of a zone with an odd shift (Lord Howe's 30 minutes, Chatham's :45 offset)
  // cron-parser may give up ("loop limit exceeded") or answer a time not after `after`: a schedule would stop for
  // good, or fire one time again and again in a tight loop. Ask again from a little later, then later still.
  for (const later of [0, ...RETRY_LATER_MS]) {
    try {
      const t = parse(spec, new Date(after.getTime() + later)).next().toDate();
      if (t.getTime() > after.getTime()) return t;
    } catch {
      // Asked again from later on.
    }
  }
  return null;
}

/** The latest time `spec` fires at or before `atOrBefore`, or null when it never did. */
export function latestTime(spec: CronSpec, atOrBefore: Date): Date | null {
  // prev() is strictly before its start; cron times are whole seconds, so a millisecond later includes `atOrBefore`.
  try {
    return parse(spec, new Date(atOrBefore.getTime() + 1)).prev().toDate();
  } catch {
    return null;
  }
}

/**
 * How many times `spec` fires in `[from, to)`, counting at most `cap` (a
 * schedule every second that was down for a week would otherwise take
 * 600,000 steps to count).
 */
export function countTimes(spec: CronSpec, from: Date, to: Date, cap: number): number {
  if (from.getTime() >= to.getTime()) return 0;
  const times = parse(spec, new Date(from.getTime() - 1));
  let n = 0;
  try {
    while (n < cap && times.next().getTime() < to.getTime()) n++;
  } catch {
    // It never fires again: counted already.
  }
  return n;
}
