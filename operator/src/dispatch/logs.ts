import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { MAX_LOG_LINES_PER_RUN, Nats, RunLogLineSchema, type RunLogLine } from "@offload/sdk/internal";

/** A run's log as `GET /v1/runs/:id/logs` answers it. */
export interface RunLogs {
  lines: RunLogLine[];
  truncated: boolean;
}

/**
 * Reads a run's log lines from `OFFLOAD_LOGS`, oldest first, up to the last
 * line stored when the call began (lines logged meanwhile wait for the next
 * call). An ordered consumer filtered on the run's subject reads them in a
 * few round trips, and is deleted after. `truncated` is set once the subject
 * holds the most lines the stream keeps per run: from then on the oldest are
 * being dropped. Lines that do not parse (another version's format) are skipped.
 */
export async function readRunLogs(js: JetStreamClient, jsm: JetStreamManager, runId: string): Promise<RunLogs> {
  const subject = Nats.logSubject(runId);
  const last = await jsm.streams.getMessage(Nats.logsStream, { last_by_subj: subject });
  if (!last) return { lines: [], truncated: false };
  const info = await jsm.streams.info(Nats.logsStream, { subjects_filter: subject });
  const count = info.state.subjects?.[subject] ?? 0;
  const consumer = await js.consumers.get(Nats.logsStream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const lines: RunLogLine[] = [];
  try {
    let done = false;
    let seen = 0;
    // Bounded: the subject holds at most `count` lines up to `last`, and each fetch waits at most a few seconds.
    for (let round = 0; !done && round < 20; round++) {
      const batch = await consumer.fetch({ max_messages: Math.max(1, Math.min(count - seen, 500)), expires: 2000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        seen++;
        if (m.seq <= last.seq) {
          const line = RunLogLineSchema.safeParse(parseOrUndefined(m.string()));
          if (line.success) lines.push(line.data);
        }
        if (m.seq >= last.seq) {
          done = true;
          break;
        }
      }
      if (got === 0) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return { lines, truncated: count >= MAX_LOG_LINES_PER_RUN };
}

/** `JSON.parse(s)`, or undefined when `s` is not JSON. */
export function parseOrUndefined(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
