// The run store when its database fails under it (issue 11). PostgreSQL: the
// crash of the fault campaign was an 'error' event on a checked-out pg client
// with no listener; here the backend of a client held by a transaction is
// terminated (57P01, as `pg_ctl restart -m fast` does) between two statements.
// PGlite: a trap in its WebAssembly broke it for good while it went on answering.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseBrokenError, isDatabaseUnavailable, openDb, type Db } from "../../operator/src/store/db.js";
import { startPostgres, type PostgresServer } from "../support/index.js";

describe("the run store on PostgreSQL when a held connection dies", () => {
  let server: PostgresServer;
  let db: Db;
  let admin: pg.Client;
  const connectionErrors: Error[] = [];
  let onConnectionError: (() => void) | undefined;

  beforeAll(async () => {
    server = await startPostgres();
    const url = await server.createDatabase(`db_${randomUUID().slice(0, 8)}`);
    db = await openDb(url, "/nonexistent", (err) => {
      connectionErrors.push(err);
      onConnectionError?.();
    });
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await server?.stop();
  });

  it("reports the error, rejects the transaction as unavailable, discards the client, and serves the next query", async () => {
    const errorSeen = new Promise<void>((resolve) => (onConnectionError = resolve));
    const outcome = await db
      .transaction(async (tx) => {
        const [row] = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        const pid = row?.pid;
        expect(pid).toBeTypeOf("number");
        // Terminated while held and idle: no statement of ours is waiting for an answer, so pg can only emit 'error'.
        await admin.query("SELECT pg_terminate_backend($1)", [pid]);
        await errorSeen;
        await tx.query("SELECT 1");
        return "committed";
      })
      .then(
        (v) => ({ ok: true as const, v }),
        (err: unknown) => ({ ok: false as const, err }),
      );
    expect(outcome.ok).toBe(false);
    expect(isDatabaseUnavailable(outcome.ok ? undefined : outcome.err)).toBe(true);
    expect(connectionErrors.map((e) => (e as Error & { code?: string }).code)).toContain("57P01");
    // The dead client went back to the pool as broken and was dropped: every connection the pool lends now works.
    const rows = await Promise.all(Array.from({ length: 12 }, () => db.query<{ one: number }>("SELECT 1 AS one")));
    expect(rows.flat().map((r) => r.one)).toEqual(Array(12).fill(1));
    expect(await db.transaction((tx) => tx.query<{ two: number }>("SELECT 2 AS two"))).toEqual([{ two: 2 }]);
  });
});

describe("the run store on embedded PGlite when its WebAssembly traps", () => {
  let dir: string;
  let db: Db | undefined;
  const errors: Error[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-pglite-trap-"));
    db = await openDb(undefined, dir, (err) => errors.push(err));
  });
  afterAll(async () => {
    await db?.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("stops using a PGlite that trapped: every later call fails at once with an error that says to restart", async () => {
    expect(db!.failure).toBeUndefined();
    // What broke it in the fault campaign, handed to it directly (the run API refuses such input before this).
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const first = await db!.query("SELECT $1::jsonb AS v", [deep]).then(() => undefined, (err: unknown) => err);
    expect(first).toBeInstanceOf(DatabaseBrokenError);
    expect((first as Error).message).toMatch(/cannot be used until offload-api restarts/);
    expect(db!.failure).toBe(first);
    expect(errors).toContain(first);
    await expect(db!.query("SELECT 1")).rejects.toBe(first);
    await expect(db!.transaction((tx) => tx.query("SELECT 1"))).rejects.toBe(first);
  });
});
