import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDb, type Db } from "../../operator/src/store/db.js";
import { migrate } from "../../operator/src/store/migrations.js";
import { startPostgres } from "./postgres.js";
import type { DbKind } from "./stack.js";

/** A migrated run database for tests of the store, and how to be rid of it. */
export interface TestDb {
  readonly db: Db;
  /** Closes the database and removes what it started (the PostgreSQL server, or PGlite's folder). */
  close(): Promise<void>;
}

/**
 * Opens a run database with the schema applied, without a run API: a
 * throwaway PostgreSQL server of its own, or PGlite in a temporary folder.
 */
export async function openTestDb(kind: DbKind, name: string): Promise<TestDb> {
  if (kind === "postgres") {
    const pg = await startPostgres();
    const db = await openDb(await pg.createDatabase(name), "", () => {});
    await migrate(db);
    return { db, close: async () => void (await db.close(), await pg.stop()) };
  }
  const dir = await mkdtemp(join(tmpdir(), `offload-${name}-`));
  const db = await openDb(undefined, dir, () => {});
  await migrate(db);
  return { db, close: async () => void (await db.close(), await rm(dir, { recursive: true, force: true })) };
}
