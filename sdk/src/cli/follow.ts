import type { OffloadClient } from "../client.js";
import { isTerminal, type Run } from "../protocol/index.js";

/** How often a RUNNING run is re-read for its progress (the state itself comes from the event stream). */
const PROGRESS_POLL_MS = 1000;

/**
 * Follows run `id` to its end: `onChange` gets the run as it is, then after
 * each change of state, attempt or what a held run waits for (from `GET /v1/runs/:id/events`, through
 * the SDK's `watchRun`) and of progress; resolves with the finished run.
 * Progress is also re-read once a second while the run is RUNNING, so that it
 * shows whether or not the event stream carries progress events.
 */
export async function followRun(client: OffloadClient, id: string, onChange: (run: Run) => void, signal?: AbortSignal): Promise<Run> {
  let latest: Run | undefined;
  let shown = "";
  const show = (run: Run): void => {
    // A re-read racing an event must not show the run going back.
    if (latest && isTerminal(latest.state) && !isTerminal(run.state)) return;
    latest = run;
    const key = `${run.state}|${run.attempts}|${JSON.stringify(run.waitingFor)}|${JSON.stringify((run as { progress?: unknown }).progress ?? null)}`;
    if (key === shown) return;
    shown = key;
    onChange(run);
  };
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const poll = setInterval(() => {
    if (latest?.state !== "RUNNING") return;
    client.getRun(id).then(
      (run) => {
        if (!both.aborted) show(run);
      },
      () => undefined, // the event stream reports what matters; a missed re-read is only a stale progress
    );
  }, PROGRESS_POLL_MS);
  try {
    for await (const run of client.watchRun(id, { signal: both })) show(run);
  } finally {
    clearInterval(poll);
    stop.abort();
  }
  if (!latest || !isTerminal(latest.state)) {
    // Aborted before the end: answer the run as it is now.
    return latest ?? (await client.getRun(id));
  }
  return latest;
}
