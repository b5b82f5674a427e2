import type { JetStreamManager } from "@nats-io/jetstream";
import type { TaskInfo } from "@offload/sdk/internal";
import { consumerLoads } from "../dispatch/backlog.js";
import type { WorkerDirectory } from "../dispatch/heartbeats.js";
import type { TaskRegistry } from "../registry/types.js";
import type { Db } from "../store/db.js";
import { tasksWithRuns } from "../store/tasks.js";

/** Where the task list comes from. */
export interface TaskListDeps {
  db: Db;
  jsm: JetStreamManager;
  workers: WorkerDirectory;
  /** The definitions workers registered. */
  registry: Pick<TaskRegistry, "all">;
}

/**
 * The tasks known from runs, task consumers, worker heartbeats and
 * registrations, by name, with their load and definition. `backlog` comes
 * from the task's shared consumer; before any worker made one, it counts the
 * task's PENDING runs. A task registered once is listed while it has no runs
 * and no workers (scaled to zero, it keeps its definition and limits).
 */
export async function listTasks(deps: TaskListDeps): Promise<TaskInfo[]> {
  const [fromRuns, loads] = await Promise.all([tasksWithRuns(deps.db), consumerLoads(deps.jsm)]);
  const workers = deps.workers.current();
  const definitions = new Map(deps.registry.all().map((d) => [d.name, d]));
  const names = [...new Set([...fromRuns.keys(), ...workers.keys(), ...loads.keys(), ...definitions.keys()])].sort();
  return names.map((name) => {
    const load = loads.get(name);
    const definition = definitions.get(name);
    return {
      name,
      backlog: load?.backlog ?? fromRuns.get(name) ?? 0,
      inFlight: load?.inFlight ?? 0,
      workers: workers.get(name) ?? [],
      ...(definition ? { definition } : {}),
    };
  });
}

