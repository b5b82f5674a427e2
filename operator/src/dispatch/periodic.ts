/** A job {@link startPeriodic} runs. */
export interface Periodic {
  /** Stops the job; resolves once the pass in progress (if any) has finished. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Runs `pass` every `intervalMs`, the pause counted from the end of the
 * previous pass (so passes never overlap). `pass` must not reject: it handles
 * its own errors. A pass that loops over batches should stop early when
 * `stopping()` says so.
 */
export function startPeriodic(intervalMs: number, pass: (stopping: () => boolean) => Promise<void>): Periodic {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const stopping = (): boolean => stopped;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = pass(stopping).finally(schedule);
    }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
