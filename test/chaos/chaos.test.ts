import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, startServers, waitFor, type NatsServer, type PostgresServer } from "../support/index.js";
import { ApiReplica, WorkerPool, type UnexpectedExit } from "./cluster.js";
import { Load, type Timed } from "./load.js";
import { executionsByRun, listAllRuns, terminalEventsByRun } from "./verify.js";

const FIXTURES = join(import.meta.dirname, "fixtures/tasks.mjs");

/** A dependency taken away and brought back, and what the replicas' `/readyz` said meanwhile. */
interface Outage {
  name: string;
  /** ms since the load began. */
  from: number;
  to: number;
  /** Every replica answered 503 while it was away. */
  notReady: boolean;
  /** Every replica answered 200 once it was back. */
  readyAgain: boolean;
}

describe("chaos: runs submitted through two API replicas while workers, replicas, nats-server and PostgreSQL are killed or restarted", () => {
  let servers: { nats: NatsServer; postgres: PostgresServer } | undefined;
  const replicas: ApiReplica[] = [];
  let workers: WorkerPool | undefined;
  let traceDir: string | undefined;
  let load: Load | undefined;
  // Ends the worker kills; set by the schedule, or by afterAll when the test failed half-way.
  let chaosOver = false;

  afterAll(async () => {
    chaosOver = true;
    await load?.abort();
    await workers?.stop();
    await Promise.all(replicas.map((r) => r.stop()));
    await Promise.all([servers?.nats.stop(), servers?.postgres.stop()]);
    await killAll();
    if (traceDir) await rm(traceDir, { recursive: true, force: true });
  });

  it("loses no accepted run, records one outcome per run, keeps idempotency, and no replica dies on its own", { timeout: 300_000 }, async () => {
    servers = await startServers();
    const { nats, postgres } = servers;
    traceDir = await mkdtemp(join(tmpdir(), "offload-chaos-"));
    const apiEnv = {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_DATABASE_URL: await postgres.createDatabase("chaos"),
      OFFLOAD_LOG_LEVEL: "warn",
      // Runs recorded by a replica killed before it published them go out a second after.
      OFFLOAD_REPUBLISH_AFTER_SECONDS: "1",
    };
    for (const name of ["api-a", "api-b"]) replicas.push(await ApiReplica.start(name, apiEnv));
    workers = new WorkerPool(3, ["--module", FIXTURES, "--concurrency", "4"], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_API_URL: replicas[0]!.url,
      OFFLOAD_LOG_LEVEL: "warn",
      // A killed worker's runs come back after 2 s rather than 30.
      OFFLOAD_ACK_WAIT_SECONDS: "2",
      OFFLOAD_CHAOS_TRACE_DIR: traceDir,
    });
    await workers.start();

    load = new Load(replicas, { submitters: 2, pauseMs: 50, batchSize: 10, workMs: 20 });
    const since = (): number => performance.now() - load!.ledger.started;
    load.start();

    const workerChaos = (async () => {
      for (let i = 0; ; i++) {
        await sleep(2000);
        if (chaosOver) return;
        await workers!.killAndReplace(i);
      }
    })();

    const everyReplicaAnswers = (status: number, timeoutMs: number): Promise<boolean> =>
      waitFor(
        `every replica's /readyz to answer ${status}`,
        async () => {
          const got = await Promise.all(replicas.map((r) => fetch(`${r.url}/readyz`, { signal: AbortSignal.timeout(5000) }).then((res) => res.status)));
          return got.every((s) => s === status);
        },
        timeoutMs,
        100,
      ).catch(() => false);

    const outages: Outage[] = [];
    const outage = async (name: string, restart: (whileDown: () => Promise<void>) => Promise<void>, minDownMs: number): Promise<void> => {
      const o: Outage = { name, from: since(), to: 0, notReady: false, readyAgain: false };
      outages.push(o);
      await restart(async () => {
        o.notReady = await everyReplicaAnswers(503, 20_000);
        const left = minDownMs - (since() - o.from);
        if (left > 0) await sleep(left);
      });
      o.to = since();
      o.readyAgain = await everyReplicaAnswers(200, 30_000);
    };

    // The schedule: one fault at a time, with load flowing in between (workers die all along).
    const between = (): Promise<void> => sleep(5000);
    await between();
    await replicas[0]!.killAndRestart();
    await between();
    await outage("nats-server", (whileDown) => nats.restart(whileDown), 1000);
    await between();
    await outage("PostgreSQL", (whileDown) => postgres.restart(whileDown), 0);
    await between();
    await replicas[1]!.killAndRestart();
    await between();
    chaosOver = true;
    await workerChaos;
    await workers.settle();
    const neverAnswered = await load.stop();

    // Every run recorded, accepted or not (a replica killed after its commit), must end COMPLETED.
    const ledger = load.ledger;
    const settled = await waitFor(
      "every recorded run to complete",
      async () => {
        const runs = await listAllRuns(replicas[0]!.url);
        return runs.every((r) => r.state === "COMPLETED") ? runs : undefined;
      },
      120_000,
      1000,
    ).catch(async () => listAllRuns(replicas[0]!.url).catch(() => [])); // not all done in time: the figures and assertions say what is not
    const byId = new Map(settled.map((r) => [r.id, r]));
    const events = await terminalEventsByRun(nats.url);
    const executions = await executionsByRun(traceDir);

    const lost: string[] = [];
    const wrong: string[] = [];
    for (const [id, sum] of ledger.accepted) {
      const run = byId.get(id);
      if (!run || run.state !== "COMPLETED") lost.push(`${id}: ${run ? run.state : "not listed"}`);
      else if ((run.result as { sum?: number } | null)?.sum !== sum) wrong.push(`${id}: result ${JSON.stringify(run.result)}, expected sum ${sum}`);
    }
    const unfinished = settled.filter((r) => r.state !== "COMPLETED").map((r) => `${r.id}: ${r.state}`);
    // One outcome per run: only COMPLETED was ever reported, and the record holds one of the reported outcomes.
    const badOutcomes: string[] = [];
    let reportedTwice = 0;
    for (const run of settled) {
      const reported = events.get(run.id) ?? [];
      if (reported.length > 1) reportedTwice++;
      if (reported.some((e) => e.type !== "COMPLETED")) badOutcomes.push(`${run.id}: reported ${reported.map((e) => e.type).join(", ")}`);
      else if (!reported.some((e) => JSON.stringify(e.result) === JSON.stringify(run.result))) {
        badOutcomes.push(`${run.id}: recorded ${JSON.stringify(run.result)}, reported ${JSON.stringify(reported)}`);
      }
    }
    const neverExecuted = settled.filter((r) => !executions.has(r.id)).map((r) => r.id);
    const executedTwice = [...executions.values()].filter((n) => n > 1).length;
    const unexpectedExits: UnexpectedExit[] = replicas.flatMap((r) => r.unexpectedExits);

    const worst = (calls: Timed[]): number => Math.max(0, ...calls.map((c) => c.ms));
    const nats0 = outages[0]!;
    const duringNats = ledger.calls.filter((c) => c.sentAt < nats0.to && c.sentAt + c.ms > nats0.from);
    console.log(
      [
        "chaos figures",
        `  runs accepted ${ledger.accepted.size}, recorded ${settled.length}; calls ${ledger.calls.length} (${[...ledger.statuses].map(([s, n]) => `${s}: ${n}`).join(", ")})`,
        `  idempotency keys ${ledger.keys.size}, repeats answered ${ledger.keyRepeats}, conflicts ${ledger.keyConflicts.length}, never answered ${neverAnswered}`,
        `  kills: workers ${workers.kills}, API replicas ${replicas.reduce((n, r) => n + r.kills, 0)}; restarts: ${outages.map((o) => `${o.name} (${Math.round(o.to - o.from)} ms down, 503 seen ${o.notReady}, 200 after ${o.readyAgain})`).join(", ")}`,
        `  lost ${lost.length}, wrong result ${wrong.length}, unfinished ${unfinished.length}, executed twice ${executedTwice}, outcome reported twice ${reportedTwice}`,
        `  worst stall of a submission ${Math.round(worst(ledger.calls))} ms (during the nats-server restart ${Math.round(worst(duringNats))} ms)`,
        `  exits on their own: API ${unexpectedExits.length}, workers ${workers.unexpectedExits.length}`,
      ].join("\n"),
    );

    expect(unexpectedExits.map((e) => `${e.name} exited ${e.code}:\n${e.output}`)).toEqual([]);
    expect(ledger.accepted.size).toBeGreaterThan(500);
    // Issue 11: a submission during a NATS blink is answered at once (the sweeper publishes its run later), never held
    // for the API's 10 s publish timeout. Half of it is a bound no loaded machine should reach.
    expect(worst(duringNats)).toBeLessThan(5000);
    expect(lost).toEqual([]);
    expect(wrong).toEqual([]);
    expect(unfinished).toEqual([]);
    expect(badOutcomes).toEqual([]);
    expect(neverExecuted).toEqual([]);
    expect(ledger.keyConflicts).toEqual([]);
    // A keyed run the app kept asking for was accepted in the end: the API came back from every fault.
    expect(neverAnswered).toBe(0);
    expect(ledger.keyRepeats).toBeGreaterThan(0);
    expect(outages.map((o) => ({ name: o.name, notReady: o.notReady, readyAgain: o.readyAgain }))).toEqual([
      { name: "nats-server", notReady: true, readyAgain: true },
      { name: "PostgreSQL", notReady: true, readyAgain: true },
    ]);
  });
});
