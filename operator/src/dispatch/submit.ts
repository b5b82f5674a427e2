import { inSpan, type CreateRunBody, type Run } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { TestFault } from "../config/api.js";
import type { Db } from "../store/db.js";
import { markPending, recordRuns } from "../store/runs.js";
import type { Admission } from "./admission.js";
import { NatsDisconnectedError } from "./connection.js";
import { OPERATOR_TRACER, publishRuns, type DispatchBus } from "./publisher.js";

/** What {@link submitRuns} needs. */
export interface SubmitDeps extends DispatchBus {
  db: Db;
  log: Logger;
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
 * Records runs, publishes the ones due now, and marks those `PENDING`; in that
 * order, so that a crash at any point leaves a run the sweeper will publish,
 * never a published run without a record. A publish that fails leaves its run
 * `SCHEDULED` for the sweeper rather than failing the call: the run is recorded,
 * and a client retrying would only make a second one. So is a PENDING mark that
 * fails: the sweeper publishes the run again (JetStream drops the duplicate by
 * its message id) and marks it. Hence when this throws, nothing was recorded,
 * and the same runs may be submitted again; except when the database connection
 * dropped after COMMIT was sent and before its reply, when they may have been:
 * only the same idempotency key makes a second submission safe then.
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
  if (due.length === 0) return recorded.map(({ run, created }) => ({ run, created }));
  const { published, failed } = await publishRuns(deps, due);
  if (failed.length) {
    // While NATS is away every submission ends here: say why in one line, without a stack each time.
    const first = failed[0];
    const err = first instanceof NatsDisconnectedError ? { reason: first.message } : { err: first };
    deps.log.warn({ ...err, failed: failed.length }, "could not publish runs; the sweeper will retry them");
  }
  const moved = await markPending(deps.db, published).catch((err: unknown) => {
    deps.log.warn({ err, runs: published.length }, "could not mark published runs PENDING; the sweeper will");
    return new Map<string, string>();
  });
  // A run that moved was still exactly as recorded; only its state and updatedAt changed.
  return recorded.map(({ run, created }) => {
    const updatedAt = moved.get(run.id);
    return { run: updatedAt ? { ...run, state: "PENDING", updatedAt } : run, created };
  });
}
