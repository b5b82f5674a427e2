// The admission scheduler (dispatch/admission.ts) against a real nats-server and
// embedded PGlite: a pass that fails is tried again, also for a task that has
// held runs but no limits any more (its definition dropped them), which the
// safety-net timer, being for limited tasks, does not cover.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ensureStreams, type RegisteredTask, type Run } from "@offload/sdk/internal";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Admission } from "../../operator/src/dispatch/admission.js";
import { NatsLink } from "../../operator/src/dispatch/connection.js";
import type { TaskRegistry } from "../../operator/src/registry/types.js";
import type { Db } from "../../operator/src/store/db.js";
import { recordRuns } from "../../operator/src/store/runs.js";
import { openTestDb, startNats, waitFor, type NatsServer, type TestDb } from "../support/index.js";

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;
let store: TestDb | undefined;
let db: Db | undefined;
let admission: Admission | undefined;

beforeAll(async () => {
  store = await openTestDb("pglite", "admission-retry");
  db = store.db;
  nats = await startNats();
  nc = await connect({ servers: nats.url });
}, 60_000);

afterAll(async () => {
  await admission?.stop();
  await nc?.close();
  await nats?.stop();
  await store?.close();
});

it("tries a failed pass again for a task whose limits are gone, so its held runs are not stranded", async () => {
  const task = "unlimited-now";
  const [held] = await recordRuns(db!, [{ task }], { retentionSeconds: 0, limited: new Set([task]) });
  expect(held).toMatchObject({ held: true, run: { state: "PENDING" } });
  // Its worker registered it again without limits: it is no longer limited, so its held runs must all go.
  const definition: RegisteredTask = { name: task, retries: 0, registeredAt: new Date().toISOString(), registeredBy: "w1" };
  const registry: TaskRegistry = { get: (t) => (t === task ? definition : undefined), all: () => [definition], limited: () => new Set(), onChange: () => () => {} };
  let dispatched: Run | undefined;
  let failed = false;
  // The pass's failure is seen in its log line, so the streams come only after it.
  const log = pino({ level: "warn" }, { write: (line: string) => void (line.includes("admission pass failed") && (failed = true)) });
  admission = new Admission(db!, { nc: nc!, link: new NatsLink(nc!, log) }, registry, log, {
    intervalMs: 50,
    onChanged: (run) => void (dispatched ??= run),
  });
  // No streams yet: the start's pass cannot publish (as when JetStream blinks) and rolls back.
  await admission.start();
  await waitFor("the first pass to fail", () => failed, 5_000);
  await ensureStreams(await jetstreamManager(nc!));
  const run = await waitFor("the held run dispatched by a later pass", () => dispatched, 5_000);
  expect(run).toMatchObject({ id: held!.run.id, state: "PENDING", waitingFor: null });
});
