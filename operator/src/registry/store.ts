import { TaskDefinitionSchema, type RegisteredTask, type TaskDefinition } from "@offload/sdk/internal";
import type { Queryable } from "../store/db.js";
import { iso } from "../store/rows.js";

interface DefinitionRow {
  name: string;
  definition: unknown;
  registered_at: Date | string;
  registered_by: string;
}

const toRegistered = (definition: TaskDefinition, row: Pick<DefinitionRow, "registered_at" | "registered_by">): RegisteredTask => ({
  ...definition,
  registeredAt: iso(row.registered_at),
  registeredBy: row.registered_by,
});

/**
 * Stores the definitions one worker registered, each replacing the task's
 * previous one (the last worker to register a task wins), and answers them as
 * stored, with the database's time. Written in name order, so replicas storing
 * the same registration at once take the rows' locks in one order and never
 * deadlock. `definitions` must name each task once.
 */
export async function upsertDefinitions(db: Queryable, workerId: string, definitions: readonly TaskDefinition[]): Promise<RegisteredTask[]> {
  if (definitions.length === 0) return [];
  const sorted = [...definitions].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const params: unknown[] = [workerId];
  const values = sorted.map((d) => {
    params.push(d.name, JSON.stringify(d));
    return `($${params.length - 1}, $${params.length}::jsonb, now(), $1)`;
  });
  const rows = await db.query<Pick<DefinitionRow, "name" | "registered_at" | "registered_by">>(
    `INSERT INTO task_definitions (name, definition, registered_at, registered_by) VALUES ${values.join(", ")}
     ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, registered_at = EXCLUDED.registered_at, registered_by = EXCLUDED.registered_by
     RETURNING name, registered_at, registered_by`,
    params,
  );
  const byName = new Map(rows.map((r) => [r.name, r]));
  return sorted.map((d) => toRegistered(d, byName.get(d.name)!));
}

/** What {@link loadDefinitions} read. */
export interface LoadedDefinitions {
  tasks: RegisteredTask[];
  /** Rows that are no `TaskDefinition` this version reads (written by hand, or by a newer version): left out. */
  unreadable: { name: string; reason: string }[];
  /** The database's time of the read: a definition stored before it and absent from `tasks` was deleted. */
  readAt: string;
}

/** Every stored definition. */
export async function loadDefinitions(db: Queryable): Promise<LoadedDefinitions> {
  const rows = await db.query<DefinitionRow & { read_at: Date | string }>(
    // A row-less table still answers the time: the LEFT JOIN keeps one row of nulls.
    `SELECT d.name, d.definition, d.registered_at, d.registered_by, now() AS read_at
     FROM (SELECT 1) AS one LEFT JOIN task_definitions d ON true`,
  );
  const tasks: RegisteredTask[] = [];
  const unreadable: LoadedDefinitions["unreadable"] = [];
  for (const row of rows) {
    if (row.name === null) continue;
    const parsed = TaskDefinitionSchema.safeParse(row.definition);
    if (parsed.success && parsed.data.name === row.name) tasks.push(toRegistered(parsed.data, row));
    else unreadable.push({ name: row.name, reason: parsed.success ? `its definition names task ${JSON.stringify(parsed.data.name)}` : parsed.error.message });
  }
  return { tasks, unreadable, readAt: iso(rows[0]!.read_at) };
}
