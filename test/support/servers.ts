import { startNats, type NatsServer } from "./nats.js";
import { startPostgres, type PostgresServer } from "./postgres.js";

/**
 * Starts a nats-server and a PostgreSQL side by side. If either fails to
 * start, stops the one that did before rethrowing, so neither outlives the test.
 */
export async function startServers(): Promise<{ nats: NatsServer; postgres: PostgresServer }> {
  const [nats, postgres] = await Promise.allSettled([startNats(), startPostgres()]);
  if (nats.status === "fulfilled" && postgres.status === "fulfilled") return { nats: nats.value, postgres: postgres.value };
  await Promise.all([
    nats.status === "fulfilled" ? nats.value.stop() : undefined,
    postgres.status === "fulfilled" ? postgres.value.stop() : undefined,
  ]);
  throw nats.status === "rejected" ? nats.reason : (postgres as PromiseRejectedResult).reason;
}
