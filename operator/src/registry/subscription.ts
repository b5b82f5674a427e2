import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { Nats, TaskRegistrationSchema, type TaskRegistration, type TaskRegistrationReply } from "@offload/sdk/internal";
import type { Logger } from "pino";
import type { Db } from "../store/db.js";
import type { TaskDefinitions } from "./registry.js";
import { upsertDefinitions } from "./store.js";
import { InputSchemaError, type ParameterCheck } from "./validate.js";

/** A registration this run API refuses; the reason goes back to the worker. */
class RefusedRegistration extends Error {
  /** The worker that sent it, when it said so: for the log line. */
  workerId: string | undefined;
}

/** A task whose input schema the run API cannot use, and why. */
interface UnusableSchema {
  task: string;
  reason: string;
}

/**
 * The registration in `m`, with each input schema compiled; throws
 * {@link RefusedRegistration} saying why it cannot be taken. A task whose
 * input schema cannot be used is taken without it (listed in `unusable`):
 * refusing the registration would leave every task of the worker without its
 * limits, and the worker asking again, refused again, for ever.
 */
function readRegistration(
  m: Msg,
  registry: TaskDefinitions,
): { registration: TaskRegistration; checks: Map<string, ParameterCheck | null>; unusable: UnusableSchema[] } {
  let data: unknown;
  try {
    data = m.json();
  } catch {
    throw new RefusedRegistration("the registration is not JSON");
  }
  const refuse = (reason: string): RefusedRegistration => {
    const refused = new RefusedRegistration(reason);
    const workerId = (data as { workerId?: unknown } | null)?.workerId;
    refused.workerId = typeof workerId === "string" ? workerId.slice(0, 253) : undefined;
    return refused;
  };
  const parsed = TaskRegistrationSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw refuse(`the registration is malformed: ${issues.slice(0, 10).join("; ")}${issues.length > 10 ? ` (and ${issues.length - 10} more)` : ""}`);
  }
  const checks = new Map<string, ParameterCheck | null>();
  const unusable: UnusableSchema[] = [];
  const tasks = parsed.data.tasks.map((task) => {
    if (checks.has(task.name)) throw refuse(`task ${JSON.stringify(task.name)} is registered twice in one registration`);
    try {
      checks.set(task.name, registry.prepare(task));
      return task;
    } catch (err) {
      if (!(err instanceof InputSchemaError)) throw err;
      unusable.push({ task: task.name, reason: err.message });
      checks.set(task.name, null);
      const { inputSchema: _unusable, ...withoutSchema } = task;
      return withoutSchema;
    }
  });
  return { registration: { ...parsed.data, tasks }, checks, unusable };
}

/** What {@link subscribeRegistrations} started. */
export interface RegistrationSubscription {
  /** Stops taking registrations; resolves once those being stored are. */
  stop(): Promise<void>;
}

/**
 * Takes workers' registrations on `Nats.registerSubject`: every replica
 * subscribes (no queue group), stores the definitions, updates its registry
 * and answers `{ok: true, registered}`; the worker keeps the first answer. A
 * malformed registration is answered `{ok: false, error}` and logged, never
 * stored. A replica that cannot store one (the database is away) does not
 * answer, so the answer the worker gets is one that stored it, or none, and
 * then it asks again. Registrations sent while this replica was cut off from
 * NATS reach it by re-reading the table when NATS comes back.
 */
export function subscribeRegistrations(nc: NatsConnection, db: Db, registry: TaskDefinitions, log: Logger): RegistrationSubscription {
  const inFlight = new Set<Promise<void>>();
  const answer = (m: Msg, reply: TaskRegistrationReply): void => {
    // A published registration (no reply subject) is stored all the same.
    if (!m.reply) return;
    try {
      m.respond(JSON.stringify(reply));
    } catch (err) {
      log.debug({ err }, "could not answer a task registration");
    }
  };
  const handle = async (m: Msg): Promise<void> => {
    let read: ReturnType<typeof readRegistration>;
    try {
      read = readRegistration(m, registry);
    } catch (err) {
      if (!(err instanceof RefusedRegistration)) throw err;
      log.warn({ reason: err.message, workerId: err.workerId }, "refused a task registration");
      answer(m, { ok: false, error: err.message });
      return;
    }
    const { registration, checks, unusable } = read;
    for (const { task, reason } of unusable) {
      log.warn({ workerId: registration.workerId, task, reason }, "took a task registration without its input schema, which the run API cannot use: its runs' parameters are not checked (its limits apply)");
    }
    let stored;
    try {
      stored = await upsertDefinitions(db, registration.workerId, registration.tasks);
    } catch (err) {
      log.warn({ err, workerId: registration.workerId }, "could not store a task registration; not answering it, so the worker asks again");
      return;
    }
    const changed = registry.apply(stored, checks);
    if (changed.length) log.info({ workerId: registration.workerId, tasks: changed }, "registered task definitions");
    answer(m, { ok: true, registered: stored.map((t) => t.name) });
  };
  const sub = nc.subscribe(Nats.registerSubject, {
    callback: (err, m) => {
      if (err) return;
      const done: Promise<void> = handle(m)
        .catch((e: unknown) => log.error({ err: e }, "failed to handle a task registration"))
        .finally(() => inFlight.delete(done));
      inFlight.add(done);
    },
  });
  let stopped = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) break;
      if (s.type === "reconnect") void registry.reload();
    }
  })().catch((err: unknown) => log.debug({ err }, "stopped following the NATS connection's status for registrations"));
  return {
    async stop() {
      stopped = true;
      sub.unsubscribe();
      await Promise.all(inFlight);
    },
  };
}
