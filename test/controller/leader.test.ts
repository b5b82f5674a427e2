import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor, type Child } from "../support/index.js";
import { startFakeKube, type FakeKube, type Obj } from "../k8s/index.js";
import { startController, taskWorker } from "./support.js";

const NS = "leader-test";

describe("leader election between controller replicas", () => {
  let fake: FakeKube;
  const children: Child[] = [];
  const holder = (): string | undefined => (fake.get("leases", "offload-system", "offload-controller")?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
  const acting = (c: Child): number => c.output().split("\n").filter((l) => l.includes('"msg":"controller acting"')).length;
  const reporters = (name: string): string[] =>
    fake
      .list("events.events.k8s.io", NS)
      .filter((e) => (e.regarding as Obj).name === name)
      .map((e) => e.reportingInstance as string);

  beforeAll(async () => {
    fake = await startFakeKube({ crds: true });
  });
  afterAll(async () => {
    await Promise.all(children.map((c) => c.stop(5000)));
    await fake?.close();
  });

  it("only the lease holder acts; a killed leader is replaced once its lease expires", async () => {
    const a = await startController(fake, "ctl-a");
    const b = await startController(fake, "ctl-b");
    children.push(a, b);
    const first = await waitFor("a leader", () => holder());
    const leader = first === "ctl-a" ? a : b;
    const standby = first === "ctl-a" ? b : a;
    await leader.waitForOutput("controller acting");

    fake.create(taskWorker("tw-one", NS, { image: "img:1", module: "m.js", replicas: 1 }));
    await waitFor("the Deployment", () => fake.get("deployments", NS, "tw-one"));
    await waitFor("an event", () => reporters("tw-one").length > 0);
    expect(new Set(reporters("tw-one"))).toEqual(new Set([first]));
    expect(acting(standby)).toBe(0);
    // The standby has not even opened watches: only the leader's four informers (TaskWorkers, TaskRuns,
    // TaskSchedules, Deployments) are watching.
    expect(fake.watchCount).toBe(4);

    // SIGKILL: no release; the standby waits for the lease to expire, then takes over.
    leader.kill("SIGKILL");
    await leader.exited;
    await standby.waitForOutput("controller acting", 20_000);
    expect(holder()).toBe(standby.name);
    const lease = fake.get("leases", "offload-system", "offload-controller")!.spec as { leaseTransitions: number };
    expect(lease.leaseTransitions).toBe(1);

    fake.create(taskWorker("tw-two", NS, { image: "img:1", module: "m.js", replicas: 1 }));
    await waitFor("the Deployment made by the new leader", () => fake.get("deployments", NS, "tw-two"));
    await waitFor("an event by the new leader", () => reporters("tw-two").length > 0);
    expect(new Set(reporters("tw-two"))).toEqual(new Set([standby.name]));
  });

  it("a leader that stops gracefully hands over at once (the lease is released)", async () => {
    const current = children.find((c) => c.proc.exitCode === null && c.proc.signalCode === null)!;
    const c = await startController(fake, "ctl-c");
    children.push(c);
    await c.waitForOutput("offload-controller started");
    expect(holder()).toBe(current.name);
    expect(await current.stop(8000)).toBe(0);
    await c.waitForOutput("controller acting", 10_000);
    expect(holder()).toBe("ctl-c");
    fake.patch("taskworkers", NS, "tw-one", { spec: { replicas: 3 } });
    await waitFor("the Deployment to follow under ctl-c", () => (fake.get("deployments", NS, "tw-one")?.spec as { replicas: number }).replicas === 3);
  });
});
