import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Nats, type Run, type RunEvent } from "@offload/sdk/internal";

/** Every run the API lists, read page by page as an app would. */
export async function listAllRuns(apiUrl: string): Promise<Run[]> {
  const runs: Run[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await fetch(`${apiUrl}/v1/runs?${query}`);
    if (!res.ok) throw new Error(`GET /v1/runs?${query} answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { runs: Run[]; nextCursor: string | null };
    runs.push(...page.runs);
    cursor = page.nextCursor;
  } while (cursor);
  return runs;
}

/** The terminal events (COMPLETED, FAILED, CANCELLED) the workers reported, per run, in stream order. */
export async function terminalEventsByRun(natsUrl: string): Promise<Map<string, RunEvent[]>> {
  const byRun = new Map<string, RunEvent[]>();
  const nc = await connect({ servers: natsUrl });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(Nats.eventsStream);
    if (info.state.messages === 0) return byRun;
    // An ordered consumer reads the whole stream once, without touching the API's durable one.
    const consumer = await jetstream(nc).consumers.get(Nats.eventsStream);
    const messages = await consumer.consume();
    for await (const m of messages) {
      // A busy worker sends several events in one message (RunEventBatch); a quiet one, each alone.
      const data = m.json<RunEvent | { events: RunEvent[] }>();
      for (const e of "events" in data ? data.events : [data]) {
        if (e.type === "COMPLETED" || e.type === "FAILED" || e.type === "CANCELLED") {
          const list = byRun.get(e.runId) ?? [];
          list.push(e);
          byRun.set(e.runId, list);
        }
      }
      if (m.info.pending === 0) break;
    }
    return byRun;
  } finally {
    await nc.close();
  }
}

/** How many times each run was executed, from the lines the fixture task appends (`executions.<pid>` files). */
export async function executionsByRun(traceDir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const f of await readdir(traceDir)) {
    if (!f.startsWith("executions.")) continue;
    for (const id of (await readFile(join(traceDir, f), "utf8")).split("\n")) {
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}
