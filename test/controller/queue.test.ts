import { describe, expect, it } from "vitest";
import { RateLimiter, WorkQueue, type Clock } from "../../operator/src/controller/queue.js";
import { mergeConditions } from "../../operator/src/controller/conditions.js";

/** A clock that moves only when told to. */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  const timers: { at: number; fn: () => void; done: boolean }[] = [];
  return {
    now: () => t,
    setTimeout(fn, ms) {
      const timer = { at: t + ms, fn, done: false };
      timers.push(timer);
      return { cancel: () => void (timer.done = true) };
    },
    advance(ms) {
      t += ms;
      for (const timer of timers.filter((x) => !x.done && x.at <= t).sort((a, b) => a.at - b.at)) {
        timer.done = true;
        timer.fn();
      }
    },
  };
}

describe("WorkQueue", () => {
  it("dedups a key added many times", async () => {
    const q = new WorkQueue(undefined, manualClock());
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands a key to two workers: an add while processing requeues after done", async () => {
    const q = new WorkQueue(undefined, manualClock());
    q.add("a");
    const k = await q.get();
    q.add("a");
    expect(q.length).toBe(0);
    q.done(k!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
  });

  it("addAfter waits for the clock; the earlier of two delays wins", () => {
    const clock = manualClock();
    const q = new WorkQueue(undefined, clock);
    q.addAfter("a", 1000);
    q.addAfter("a", 300);
    clock.advance(299);
    expect(q.length).toBe(0);
    clock.advance(1);
    expect(q.length).toBe(1);
    clock.advance(1000);
    expect(q.length).toBe(1);
  });

  it("shutDown releases waiting workers", async () => {
    const q = new WorkQueue(undefined, manualClock());
    const p = q.get();
    q.shutDown();
    expect(await p).toBeUndefined();
  });
});

describe("RateLimiter (client-go's defaults)", () => {
  it("backs a failing item off exponentially from 5 ms to 1000 s, per item, until forgotten", () => {
    const clock = manualClock();
    const r = new RateLimiter({ qps: 1e9, burst: 1e9 }, clock);
    const delays = Array.from({ length: 5 }, () => r.when("a"));
    expect(delays).toEqual([5, 10, 20, 40, 80]);
    expect(r.when("b")).toBe(5);
    for (let i = 0; i < 40; i++) r.when("a");
    expect(r.when("a")).toBe(1_000_000);
    r.forget("a");
    expect(r.when("a")).toBe(5);
  });

  it("limits overall retries with a token bucket (10/s, burst 100)", () => {
    const clock = manualClock();
    const r = new RateLimiter({}, clock);
    for (let i = 0; i < 100; i++) expect(r.when(`k${i}`)).toBe(5);
    expect(r.when("k100")).toBe(100); // one token owed at 10/s
    expect(r.when("k101")).toBe(200);
    clock.advance(1000);
    expect(r.when("k102")).toBe(5); // the bucket refilled
  });
});

describe("mergeConditions", () => {
  it("moves lastTransitionTime only when status changes", () => {
    const t1 = new Date("2025-01-01T00:00:00Z");
    const t2 = new Date("2025-01-01T00:05:00Z");
    const a = mergeConditions(undefined, [{ type: "Ready", status: "False", reason: "X", message: "m" }], t1);
    const b = mergeConditions(a, [{ type: "Ready", status: "False", reason: "Y", message: "other" }], t2);
    expect(b[0]).toMatchObject({ reason: "Y", lastTransitionTime: "2025-01-01T00:00:00Z" });
    const c = mergeConditions(b, [{ type: "Ready", status: "True", reason: "Z", message: "ok" }], t2);
    expect(c[0]!.lastTransitionTime).toBe("2025-01-01T00:05:00Z");
  });
});
