// Reading cron expressions (cron-parser underneath): what the run API refuses, and the times it computes in a time
// zone across daylight-saving changes, which docs/schedules.md promises.
import { describe, expect, it } from "vitest";
import { CronSpecError, checkCronSpec, countTimes, latestTime, nextTime, scheduleSeed } from "../../operator/src/dispatch/cron.js";

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | null): string | null => d?.toISOString() ?? null;

describe("cron specs", () => {
  it("refuses what cannot be read or never fires, naming the field", () => {
    const now = at("2026-03-01T00:00:00Z");
    const refused = (schedule: string, timeZone = "UTC"): CronSpecError => {
      try {
        checkCronSpec({ schedule, timeZone }, now);
      } catch (err) {
        if (err instanceof CronSpecError) return err;
        throw err;
      }
      throw new Error(`${JSON.stringify(schedule)} in ${timeZone} was accepted`);
    };
    for (const bad of ["61 * * * *", "* * * * * * *", "0 0 30 2 *", "every day", "  "]) expect(refused(bad).field, bad).toBe("schedule");
    expect(refused("* * * * *", "Mars/Olympus_Mons")).toMatchObject({ field: "timeZone", message: expect.stringContaining("IANA") });
    expect(refused("* * * * *", "")).toMatchObject({ field: "timeZone" });
    for (const good of ["*/2 * * * * *", "0 9 * * MON-FRI", "0 0 L * *", "@hourly"]) expect(() => checkCronSpec({ schedule: good, timeZone: "Europe/Paris" }, now)).not.toThrow();
  });

  it("reads an H field as the same value every time for one schedule (replicas agree on its times), and spreads schedules", () => {
    const hourly = (key: string) => ({ schedule: "H * * * *", timeZone: "UTC", seed: scheduleSeed("default", key) });
    const from = at("2026-01-01T00:00:00Z");
    const first = nextTime(hourly("a"), from)!;
    for (let i = 0; i < 20; i++) expect(iso(nextTime(hourly("a"), from))).toBe(iso(first));
    // Once an hour at that minute: the next after it is an hour on, and the latest at or before it is itself.
    expect(nextTime(hourly("a"), first)!.getTime() - first.getTime()).toBe(3_600_000);
    expect(iso(latestTime(hourly("a"), new Date(first.getTime() + 3_599_000)))).toBe(iso(first));
    const minutes = new Set(Array.from({ length: 20 }, (_, i) => nextTime(hourly(`k${i}`), from)!.getUTCMinutes()));
    expect(minutes.size).toBeGreaterThan(1);
  });

  it("keeps going forward across the daylight-saving changes of zones with odd shifts (Lord Howe's 30 minutes, Chatham's :45)", () => {
    for (const [timeZone, schedule] of [["Australia/Lord_Howe", "0 * * * *"], ["Australia/Lord_Howe", "0 2 * * *"], ["Pacific/Chatham", "*/15 * * * *"]] as const) {
      // Both change on 2026-04-05 (local), the night of 04-04 to 04-05 UTC.
      let t = at("2026-04-04T06:00:00Z");
      while (t.getTime() < at("2026-04-05T18:00:00Z").getTime()) {
        const next = nextTime({ schedule, timeZone }, t);
        expect(next, `${schedule} in ${timeZone} after ${t.toISOString()}`).not.toBeNull();
        expect(next!.getTime(), `${schedule} in ${timeZone} after ${t.toISOString()}`).toBeGreaterThan(t.getTime());
        t = next!;
      }
    }
  });

  it("reads the fields in the time zone, across daylight-saving changes", () => {
    const paris = (schedule: string) => ({ schedule, timeZone: "Europe/Paris" });
    // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer.
    expect(iso(nextTime(paris("0 9 * * *"), at("2026-03-28T12:00:00Z")))).toBe("2026-03-29T07:00:00.000Z");
    expect(iso(nextTime(paris("0 9 * * *"), at("2026-03-27T12:00:00Z")))).toBe("2026-03-28T08:00:00.000Z");
    // 02:30 does not exist on 29 March 2026 in Paris (02:00 jumps to 03:00): it fires at 03:30 local that day.
    expect(iso(nextTime(paris("30 2 * * *"), at("2026-03-28T12:00:00Z")))).toBe("2026-03-29T01:30:00.000Z");
    // 02:30 happens twice on 25 October 2026 (03:00 falls back to 02:00): it fires once, the first time.
    const first = nextTime(paris("30 2 * * *"), at("2026-10-24T12:00:00Z"))!;
    expect(iso(first)).toBe("2026-10-25T00:30:00.000Z");
    expect(iso(nextTime(paris("30 2 * * *"), first))).toBe("2026-10-26T01:30:00.000Z");
  });

  it("finds the latest time at or before a moment, and counts the times in between, up to a cap", () => {
    const every2s = { schedule: "*/2 * * * * *", timeZone: "UTC" };
    expect(iso(latestTime(every2s, at("2026-01-01T00:00:06.000Z")))).toBe("2026-01-01T00:00:06.000Z");
    expect(iso(latestTime(every2s, at("2026-01-01T00:00:07.999Z")))).toBe("2026-01-01T00:00:06.000Z");
    expect(iso(nextTime(every2s, at("2026-01-01T00:00:06.000Z")))).toBe("2026-01-01T00:00:08.000Z");
    // [00:00:00, 00:00:10): 0, 2, 4, 6, 8.
    expect(countTimes(every2s, at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:10Z"), 1000)).toBe(5);
    expect(countTimes(every2s, at("2026-01-01T00:00:00Z"), at("2026-01-08T00:00:00Z"), 1000)).toBe(1000);
    expect(countTimes(every2s, at("2026-01-01T00:00:10Z"), at("2026-01-01T00:00:10Z"), 1000)).toBe(0);
  });
});
