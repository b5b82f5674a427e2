import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import pg from "pg";

/** Something SQL can be sent to: the database, or one transaction on it. */
export interface Queryable {
  /** Runs one statement with `$1…` parameters; resolves with its rows. */
  query<R extends object = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * The run store's view of a database. Implemented over `pg.Pool` and over
 * embedded PGlite, so the same SQL serves both. Pass JSON as strings cast with
 * `::jsonb` and times as ISO strings cast with `::timestamptz`: both drivers
 * then agree on what a parameter means.
 */
export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Opens PostgreSQL at `url` when given, else embedded PGlite with its files under `dataDir`. */
export async function openDb(url: string | undefined, dataDir: string, onError: (err: Error) => void): Promise<Db> {
  return url ? openPostgres(url, onError) : openPglite(dataDir);
}

function openPostgres(url: string, onError: (err: Error) => void): Db {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", onError);
  return {
    kind: "postgres",
    async query<R extends object>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(sql, params as unknown[])).rows as R[];
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async <R extends object>(sql: string, params: readonly unknown[] = []) =>
            (await client.query(sql, params as unknown[])).rows as R[],
        });
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string): Promise<Db> {
  const dir = resolve(dataDir, "pgdata");
  await mkdir(dir, { recursive: true });
  // Loaded only when used: PGlite's WebAssembly is large and Postgres users never need it.
  const { PGlite } = await import("@electric-sql/pglite");
  const db = await PGlite.create(dir);
  return {
    kind: "pglite",
    async query<R extends object>(sql: string, params: readonly unknown[] = []) {
      return (await db.query<R>(sql, params as unknown[])).rows;
    },
    transaction(fn) {
      return db.transaction((tx) =>
        fn({ query: async <R extends object>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, params as unknown[])).rows }),
      );
    },
    close: () => db.close(),
  };
}
