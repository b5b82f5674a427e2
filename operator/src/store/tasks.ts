import type { Queryable } from "./db.js";

/**
 * Every task name that has runs, with how many of its runs are `PENDING`
 * (dispatched, not yet started). Distinct names come from a loose index scan
 * (one index probe per task, however many runs each has).
 */
export async function tasksWithRuns(db: Queryable): Promise<Map<string, number>> {
  const names = await db.query<{ task: string }>(
    `WITH RECURSIVE t(task) AS (
       (SELECT task FROM runs ORDER BY task LIMIT 1)
       UNION ALL
       SELECT (SELECT r.task FROM runs r WHERE r.task > t.task ORDER BY r.task LIMIT 1) FROM t WHERE t.task IS NOT NULL
     )
     SELECT task FROM t WHERE task IS NOT NULL`,
  );
  const pending = await db.query<{ task: string; n: number | string }>(
    "SELECT task, count(*) AS n FROM runs WHERE state = 'PENDING' GROUP BY task",
  );
  const out = new Map<string, number>(names.map((r) => [r.task, 0]));
  // count(*) is a bigint: pg answers it as a string.
  for (const r of pending) out.set(r.task, Number(r.n));
  return out;
}
