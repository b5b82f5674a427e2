import type { Summary } from "../stats.js";

/** `delay()` one run at a time by `callers` concurrent callers, each awaiting its call before the next: the producer side alone. */
export interface AcceptResult {
  callers: number;
  calls: number;
  /** Runs submitted first, unmeasured (they count among the runs the CPU was spent on). */
  warmup: number;
  wallMs: number;
  /** Runs accepted per second over the wall time. */
  perSec: number;
  /** Each call, from its start until the system accepted the run. */
  callMs: Summary;
}

/** Runs submitted in batches (`map(..., {deferred: true})`, `addBulk`, pipelined publishes), one batch after another. */
export interface BatchResult {
  batchSize: number;
  batches: number;
  /** Runs of the unmeasured warm-up batch submitted first (they count among the runs the CPU was spent on). */
  warmup: number;
  perSec: number;
  batchMs: Summary;
}

/**
 * Runs submitted to the workers, then followed until every one completed.
 * Latencies run from the moment the submit call returned (the run accepted).
 */
export interface FlowResult {
  runs: number;
  /** Fixed offered load, runs per second; absent when flat out. */
  offeredPerSec?: number;
  /** From the first submit until the last run was accepted. */
  submitMs: number;
  /** Runs accepted per second: equals the offered rate unless the system (or the bench) could not keep up. */
  acceptedPerSec: number;
  /** Each submit call (flat out: each batch), from its start until accepted. */
  callMs: Summary;
  /** From the first submit until the last run was recorded completed. */
  completedMs: number;
  /** runs / completedMs. */
  completedPerSec: number;
  /** Accepted → a worker started it. Negative when a worker started it before the submit call had returned. */
  toStartMs: Summary;
  /** Accepted → recorded completed, as the app can see it. */
  toCompletedMs: Summary;
  /** Worker finished → recorded completed, where those are two steps (Offload: the run API materializing the event). */
  recordLagMs?: Summary;
  /** How far the open-loop sender fell behind its schedule at worst, ms (offered load only). */
  maxSendLagMs?: number;
}

/** Everything measured of one system, in workload order; a workload that did not run is absent. */
export interface WorkloadResults {
  accept?: AcceptResult;
  batch?: BatchResult;
  flatOut?: FlowResult;
  /** One per offered rate, ascending. */
  offered: FlowResult[];
}
