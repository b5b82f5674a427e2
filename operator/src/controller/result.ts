/** What a reconcile of one key asks of the queue. */
export interface ReconcileResult {
  /** Reconcile again after this long (e.g. to poll), even if nothing changes. */
  requeueAfterMs?: number;
}

/**
 * Thrown (after the status says why) to have the queue retry the key with
 * backoff; with `retryWithinMs`, no later than that, however long the backoff
 * has grown (for a deadline the reconcile must not overshoot by much).
 */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryWithinMs?: number,
  ) {
    super(message);
  }
}
