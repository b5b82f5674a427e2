import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import pg from "pg";

/** How to send one statement. */
export interface QueryOptions {
  /**
   * Prepare the statement once per connection under this name and reuse its
   * plan (PostgreSQL only; PGlite runs in this process and ignores it). For
   * the few statements sent for every run: planning one of them cost
   * PostgreSQL as much as running it. One name, one SQL text, for good; and
   * only for statements whose result columns never change (a `RETURNING *`
   * would fail after a migration added a column, until the connection ends).
   */
  name?: string;
}

/** Something SQL can be sent to: the database, or one transaction on it. */
export interface Queryable {
  /** Runs one statement with `$1…` parameters; resolves with its rows. */
  query<R extends object = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<R[]>;
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
  /**
   * Set once the database can no longer be used at all and only a restart of
   * the process helps (embedded PGlite whose WebAssembly trapped); every call
   * then rejects with it at once. Undefined while the database works.
   */
  readonly failure: Error | undefined;
  close(): Promise<void>;
}

/** The embedded database failed for good; the process must be restarted (its files are intact). */
export class DatabaseBrokenError extends Error {
  constructor(cause: unknown) {
    super(`the embedded database (PGlite) failed and cannot be used until offload-api restarts: ${String((cause as Error)?.message ?? cause)}`, { cause });
    this.name = "DatabaseBrokenError";
  }
}

// SQLSTATE classes and codes that mean the connection or the server is gone, not that the statement was wrong.
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);
const UNAVAILABLE_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable)/;

/**
 * Whether `err` says the database could not be reached or dropped the
 * connection (a restart, a failover, a network blink) rather than refusing
 * what was asked: the request may succeed if tried again later.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (code.startsWith("08") || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code))) return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}

/** Opens PostgreSQL at `url` when given, else embedded PGlite with its files under `dataDir`. */
export async function openDb(url: string | undefined, dataDir: string, onError: (err: Error) => void): Promise<Db> {
  return url ? openPostgres(url, onError) : openPglite(dataDir, onError);
}

function openPostgres(url: string, onError: (err: Error) => void): Db {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", onError);
  return {
    kind: "postgres",
    async query<R extends object>(sql: string, params: readonly unknown[] = [], options: QueryOptions = {}) {
      return (await pool.query(statement(sql, params, options))).rows as R[];
    },
    async transaction(fn) {
      const client = await pool.connect();
      // While held, the client is not the pool's: an error on its connection (the server restarting: 57P01)
      // between two queries would be an unhandled 'error' event, which kills the process. Keep it here instead.
      let broken: Error | undefined;
      const onClientError = (err: Error): void => {
        broken ??= err;
        onError(err);
      };
      client.on("error", onClientError);
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: async <R extends object>(sql: string, params: readonly unknown[] = [], options: QueryOptions = {}) =>
            (await client.query(statement(sql, params, options))).rows as R[],
        });
        await client.query("COMMIT");
        return result;
      } catch (err) {
        if (!broken && isDatabaseUnavailable(err)) broken = err as Error;
        if (!broken) await client.query("ROLLBACK").catch((e: unknown) => void (broken = e as Error));
        throw err;
      } finally {
        client.off("error", onClientError);
        // With an error the pool discards the client rather than lend out a dead connection.
        client.release(broken);
      }
    },
    failure: undefined,
    close: () => pool.end(),
  };
}

/** node-postgres's form of a statement: named (prepared once per connection) when the options say so. */
function statement(text: string, params: readonly unknown[], { name }: QueryOptions): pg.QueryConfig {
  return { text, values: params as unknown[], ...(name ? { name } : {}) };
}

async function openPglite(dataDir: string, onError: (err: Error) => void): Promise<Db> {
  const dir = resolve(dataDir, "pgdata");
  await mkdir(dir, { recursive: true });
  // Loaded only when used: PGlite's WebAssembly is large and Postgres users never need it.
  const { PGlite } = await import("@electric-sql/pglite");
  const db = await PGlite.create(dir);
  // A trap in PGlite's WebAssembly (a jsonb nested ~900 deep did it: "memory access out of bounds") leaves its memory
  // in an unknown state: every later statement fails or, worse, answers wrongly. Stop using it and say so.
  let failure: DatabaseBrokenError | undefined;
  const guarded = async <T>(work: () => Promise<T>): Promise<T> => {
    if (failure) throw failure;
    try {
      return await work();
    } catch (err) {
      // WebAssembly.RuntimeError, by name: this build's type library does not declare WebAssembly.
      if (err instanceof Error && err.name === "RuntimeError") {
        failure ??= new DatabaseBrokenError(err);
        onError(failure);
        throw failure;
      }
      throw err;
    }
  };
  return {
    kind: "pglite",
    query<R extends object>(sql: string, params: readonly unknown[] = []) {
      return guarded(async () => (await db.query<R>(sql, params as unknown[])).rows);
    },
    transaction(fn) {
      return guarded(() =>
        db.transaction((tx) =>
          fn({ query: async <R extends object>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, params as unknown[])).rows }),
        ),
      );
    },
    get failure() {
      return failure;
    },
    close: () => (failure ? Promise.resolve() : db.close()),
  };
}
