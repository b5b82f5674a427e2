import { inSpan, type CreateRunBody, type Run } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { TestFault } from "../config/api.js";
import type { Db } from "../store/db.js";
import { recordRuns } from "../store/runs.js";
import type { Admission } from "./admission.js";
import type { OutboxDispatcher } from "./outbox.js";
import { OPERATOR_TRACER } from "./publisher.js";

/** What {@link submitRuns} needs. */
export interface SubmitDeps {
  db: Db;
  log: Logger;
  /** Publishes the runs due now once they are recorded. */
  dispatcher: OutboxDispatcher;
  testFault: TestFault | undefined;
  /** Completed runs older than this (seconds; 0: no limit) are past retention and lend no cached result. */
  runRetentionSeconds: number;
  /** Admission of limited tasks: their runs are recorded held and it dispatches them. Unset: every run goes straight to NATS. */
  admission?: Admission | undefined;
}

/** A submitted run, and whether this call created it (false: an idempotent replay). */
export interface Submitted {
  run: Run;
  created: boolean;
}

/**
 * Records runs and answers them as soon as they are: a run due now is
 * recorded `PENDING` with a row in the dispatch outbox, in the same statement,
 * and published after (see {@link OutboxDispatcher}); a crash or NATS away
 * leaves its row for the sweeper, so the answer need not wait for JetStream.
 * A run is never published before it is recorded, so a worker's events always
 * find their run. When this throws, nothing was recorded, and the same runs
 * may be submitted again; except when the database connection dropped after
 * COMMIT was sent and before its reply, when they may have been: only the same
 * idempotency key makes a second submission safe then.
 * Runs of a limited task (see {@link Admission}) due now are recorded held,
 * `PENDING` in the run API, and are not published here: an admission pass
 * dispatches them when their limits allow. Tasks without limits keep this
 * path, untouched.
 */
export async function submitRuns(deps: SubmitDeps, bodies: readonly CreateRunBody[]): Promise<Submitted[]> {
  // A span in the caller's trace (delay() sends its context in the body; a batch from map() shares one).
  const tasks = new Set(bodies.map((b) => b.task));
  const attributes = { "offload.runs": bodies.length, ...(tasks.size === 1 ? { "offload.task": bodies[0]!.task } : {}) };
  const parent = bodies.find((b) => b.traceContext)?.traceContext;
  return inSpan(OPERATOR_TRACER, "offload.submit", { kind: "server", attributes, parent }, async (span) => {
    const submitted = await submit(deps, bodies);
    if (submitted.length === 1) span.setAttributes({ "offload.run.id": submitted[0]!.run.id, "offload.run.created": submitted[0]!.created });
    return submitted;
  });
}

async function submit(deps: SubmitDeps, bodies: readonly CreateRunBody[]): Promise<Submitted[]> {
  const limited = deps.admission?.limited();
  const recorded = await recordRuns(deps.db, bodies, { retentionSeconds: deps.runRetentionSeconds, limited });
  const held = recorded.filter((r) => r.created && r.held);
  if (held.length) deps.admission?.held(held.map((r) => r.run));
  const due = recorded.filter((r) => r.created && r.due);
  if (deps.testFault === "exit-after-record" && recorded.some((r) => r.created)) {
    deps.log.fatal({ runs: recorded.map((r) => r.run.id) }, "OFFLOAD_TEST_FAULT=exit-after-record: exiting after recording, before publishing");
    process.exit(1);
  }
  await deps.dispatcher.dispatch(due);
  return recorded.map(({ run, created }) => ({ run, created }));
}
