/**
 * How the run API groups concurrent single POSTs (SubmitCoalescer): a lone
 * run goes out at once, runs arriving together share one submit, a group
 * grows while earlier ones are being written, and a failed group is retried
 * one run at a time so that only the bad run's call fails.
 */
import type { CreateRunBody, Run } from "@offload/sdk/internal";
import { describe, expect, it } from "vitest";
import { MAX_GROUP, MAX_IN_FLIGHT, SubmitCoalescer } from "../../operator/src/dispatch/coalesce.js";
import type { Submitted } from "../../operator/src/dispatch/submit.js";

const body = (i: number): CreateRunBody => ({ task: "t", parameters: { i } });
const answer = (b: CreateRunBody): Submitted => ({ run: { id: `run-${JSON.stringify(b.parameters)}` } as Run, created: true });

/** A submit function that records its calls and finishes each when told to. */
function recorder() {
  const calls: { bodies: readonly CreateRunBody[]; finish(): void; fail(err: Error): void }[] = [];
  const submit = (bodies: readonly CreateRunBody[]): Promise<Submitted[]> =>
    new Promise((resolve, reject) => calls.push({ bodies, finish: () => resolve(bodies.map(answer)), fail: reject }));
  return { calls, submit };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("SubmitCoalescer", () => {
  it("sends a lone run on the next turn, and runs submitted together as one group, answering each its own", async () => {
    const r = recorder();
    const c = new SubmitCoalescer(r.submit);
    const lone = c.submit(body(0));
    await turn();
    expect(r.calls.map((x) => x.bodies.length)).toEqual([1]);
    r.calls[0]!.finish();
    expect((await lone).run.id).toBe('run-{"i":0}');

    const many = Array.from({ length: 5 }, (_, i) => c.submit(body(i + 1)));
    await turn();
    expect(r.calls.map((x) => x.bodies.length)).toEqual([1, 5]);
    r.calls[1]!.finish();
    expect((await Promise.all(many)).map((s) => s.run.id)).toEqual([1, 2, 3, 4, 5].map((i) => `run-{"i":${i}}`));
  });

  it(`writes at most ${MAX_IN_FLIGHT} groups at once; runs arriving meanwhile wait and go out together`, async () => {
    const r = recorder();
    const c = new SubmitCoalescer(r.submit);
    const first = [c.submit(body(0))];
    await turn();
    first.push(c.submit(body(1)));
    await turn();
    expect(r.calls).toHaveLength(MAX_IN_FLIGHT);
    const waiting = Array.from({ length: 7 }, (_, i) => c.submit(body(10 + i)));
    await turn();
    expect(r.calls).toHaveLength(MAX_IN_FLIGHT);
    r.calls[0]!.finish();
    await first[0];
    await turn();
    expect(r.calls[MAX_IN_FLIGHT]!.bodies).toHaveLength(7);
    for (const x of r.calls.slice(1)) x.finish();
    expect(await Promise.all([...first, ...waiting])).toHaveLength(9);
  });

  it(`caps a group at ${MAX_GROUP} runs`, async () => {
    const r = recorder();
    const c = new SubmitCoalescer(r.submit);
    const all = Array.from({ length: MAX_GROUP + 3 }, (_, i) => c.submit(body(i)));
    await turn();
    await turn();
    expect(r.calls.map((x) => x.bodies.length)).toEqual([MAX_GROUP, 3]);
    for (const x of r.calls) x.finish();
    expect(await Promise.all(all)).toHaveLength(MAX_GROUP + 3);
  });

  it("retries a failed group one run at a time: only the run that fails again rejects", async () => {
    const bad = new Error("the database refused run 2");
    const submit = async (bodies: readonly CreateRunBody[]): Promise<Submitted[]> => {
      if (bodies.some((b) => (b.parameters as { i: number }).i === 2)) throw bad;
      return bodies.map(answer);
    };
    const c = new SubmitCoalescer(submit);
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => c.submit(body(i))));
    expect(results.map((x) => x.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((results[2] as PromiseRejectedResult).reason).toBe(bad);
    // And it goes on taking runs.
    expect((await c.submit(body(4))).run.id).toBe('run-{"i":4}');
  });
});
