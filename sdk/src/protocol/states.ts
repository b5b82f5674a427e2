import { z } from "zod";

/**
 * The states of a run. `SCHEDULED`: recorded, not yet due (scheduled for
 * later, or a retry about to be dispatched). `PENDING`: due, its task message
 * published or on its way, waiting for a worker. `RUNNING`: a worker
 * has it. `AWAITING_RETRY`: failed, another try is due later. The last three
 * are terminal: a run never leaves them.
 */
export const RUN_STATES = ["SCHEDULED", "PENDING", "RUNNING", "AWAITING_RETRY", "COMPLETED", "FAILED", "CANCELLED"] as const;
export const RunStateSchema = z.enum(RUN_STATES);
export type RunState = z.infer<typeof RunStateSchema>;

export const TERMINAL_STATES: ReadonlySet<RunState> = new Set<RunState>(["COMPLETED", "FAILED", "CANCELLED"]);

/** True for `COMPLETED`, `FAILED` and `CANCELLED`. */
export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.has(state);
}

// Which state may follow which. A late or duplicated event must never move a
// run backwards, so e.g. PENDING is not reachable from RUNNING: a redelivered
// message shows up as a new RUNNING (with a higher attempt), not as PENDING.
// A try's outcome may be recorded before its RUNNING (API replicas share the
// events, and each records what it took), so every outcome, AWAITING_RETRY
// included, may follow a run that waits for its dispatch.
const NEXT: Record<RunState, readonly RunState[]> = {
  SCHEDULED: ["PENDING", "RUNNING", "AWAITING_RETRY", "COMPLETED", "FAILED", "CANCELLED"],
  PENDING: ["RUNNING", "AWAITING_RETRY", "COMPLETED", "FAILED", "CANCELLED"],
  RUNNING: ["RUNNING", "AWAITING_RETRY", "COMPLETED", "FAILED", "CANCELLED"],
  AWAITING_RETRY: ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
};

/** Whether a run in state `from` may move to `to`. */
export function canTransition(from: RunState, to: RunState): boolean {
  return NEXT[from].includes(to);
}

/** The states a run may be in for it to move to `to` (used to guard SQL updates). */
export function statesBefore(to: RunState): RunState[] {
  return RUN_STATES.filter((s) => NEXT[s].includes(to));
}
