import { isDeepStrictEqual } from "node:util";
import type { Json, RegisteredTask, TaskDefinition } from "@offload/sdk/internal";
import type { Logger } from "pino";
import { startPeriodic, type Periodic } from "../dispatch/periodic.js";
import type { Db } from "../store/db.js";
import { loadDefinitions } from "./store.js";
import type { TaskRegistry } from "./types.js";
import { compileParameterCheck, InputSchemaError, type ParameterCheck, type ParameterIssue } from "./validate.js";

/** What the run API knows of a run's parameters before recording it. */
export type ParametersVerdict =
  /** No worker has registered the task: nothing could be checked. */
  | { registered: false }
  /** Checked against the registered input schema when there is one (`issues` empty: they match, or nothing to check). */
  | { registered: true; issues: ParameterIssue[] };

interface Entry {
  definition: RegisteredTask;
  /** Compiled on first use; null when the task registered no input schema, or it could not be compiled. */
  check: ParameterCheck | null | undefined;
}

/** The part of a registered task that says what it is, without who registered it when. */
function definitionOf(task: RegisteredTask): TaskDefinition {
  const { registeredAt: _at, registeredBy: _by, ...definition } = task;
  return definition;
}

/**
 * The {@link TaskRegistry} of one run API replica: a Map of the stored
 * definitions, each with its input schema compiled once (and kept while a
 * new registration brings the same schema again). Fed by registrations this
 * replica stored ({@link TaskDefinitions.apply}) and by re-reading the table
 * ({@link TaskDefinitions.reload}): at start, every `reloadMs`, and when NATS
 * comes back, so a registration this replica missed reaches it too.
 */
export class TaskDefinitions implements TaskRegistry {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(task: string) => void>();
  #limited: ReadonlySet<string> = new Set();
  /** The database's time of the previous read. */
  #lastReadAt: number | undefined;
  #reloading: Promise<void> | undefined;
  #reloadFailing = false;

  constructor(db: Db, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  get(task: string): RegisteredTask | undefined {
    return this.#entries.get(task)?.definition;
  }

  all(): RegisteredTask[] {
    return [...this.#entries.values()].map((e) => e.definition);
  }

  limited(): ReadonlySet<string> {
    return this.#limited;
  }

  onChange(listener: (task: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Checks a run's parameters against its task's registered input schema. Memory only: it sits on the submit path. */
  checkParameters(task: string, parameters: Json | undefined, at: string): ParametersVerdict {
    const entry = this.#entries.get(task);
    if (!entry) return { registered: false };
    // A run without parameters is left to the worker: a zod input that is optional at the top level has no JSON Schema
    // form saying so (z.toJSONSchema writes the inner object), so the run API cannot tell whether "nothing" fits.
    if (parameters === undefined || parameters === null) return { registered: true, issues: [] };
    if (entry.check === undefined) entry.check = this.#compile(entry.definition);
    return { registered: true, issues: entry.check ? entry.check(parameters, at) : [] };
  }

  /**
   * The compiled check of `definition`'s input schema, reusing this replica's
   * when the task's registered schema is the same; throws
   * {@link InputSchemaError} when it cannot be compiled. For a registration to
   * be checked before it is stored; hand the result to {@link apply}.
   */
  prepare(definition: TaskDefinition): ParameterCheck | null {
    const entry = this.#entries.get(definition.name);
    if (entry?.check !== undefined && isDeepStrictEqual(entry.definition.inputSchema, definition.inputSchema)) return entry.check;
    return definition.inputSchema ? compileParameterCheck(definition.inputSchema) : null;
  }

  /**
   * Takes definitions as stored: each replaces what this replica knew of its
   * task unless that is newer (a registration stored later, seen first).
   * `checks` are compiled checks from {@link prepare}. Listeners hear of each
   * task whose definition changed; so does the answer.
   */
  apply(tasks: readonly RegisteredTask[], checks: ReadonlyMap<string, ParameterCheck | null> = new Map()): string[] {
    const changed: string[] = [];
    for (const task of tasks) {
      const before = this.#entries.get(task.name);
      if (before && Date.parse(before.definition.registeredAt) > Date.parse(task.registeredAt)) continue;
      const same = before !== undefined && isDeepStrictEqual(definitionOf(before.definition), definitionOf(task));
      const check = checks.has(task.name)
        ? checks.get(task.name)
        : before && isDeepStrictEqual(before.definition.inputSchema, task.inputSchema)
          ? before.check
          : undefined;
      this.#entries.set(task.name, { definition: task, check });
      if (!same) changed.push(task.name);
    }
    this.#changed(changed);
    return changed;
  }

  /**
   * Re-reads every stored definition. Keeps what it knows when the database
   * does not answer (logged once per outage). A task whose row is gone
   * (deleted by hand) is forgotten once a read after its registration no
   * longer has it. Concurrent calls share one read.
   */
  reload(): Promise<void> {
    return (this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined)));
  }

  async #reload(): Promise<void> {
    let loaded;
    try {
      loaded = await loadDefinitions(this.#db);
    } catch (err) {
      if (!this.#reloadFailing) this.#log.warn({ err }, "could not read the registered task definitions; keeping the ones known");
      this.#reloadFailing = true;
      return;
    }
    if (this.#reloadFailing) this.#log.info("reading the registered task definitions again");
    this.#reloadFailing = false;
    for (const { name, reason } of loaded.unreadable) {
      this.#log.warn({ task: name, reason }, "a stored task definition is unreadable; its runs are not checked or limited until a worker registers the task again");
    }
    this.apply(loaded.tasks);
    const present = new Set(loaded.tasks.map((t) => t.name));
    const forgotten: string[] = [];
    for (const [name, entry] of this.#entries) {
      if (present.has(name) || this.#lastReadAt === undefined || Date.parse(entry.definition.registeredAt) >= this.#lastReadAt) continue;
      this.#entries.delete(name);
      forgotten.push(name);
    }
    if (forgotten.length) this.#log.info({ tasks: forgotten }, "forgot task definitions deleted from the database");
    this.#changed(forgotten);
    this.#lastReadAt = Date.parse(loaded.readAt);
  }

  /** Re-reads every `intervalMs` until the returned job is stopped. */
  reloadEvery(intervalMs: number): Periodic {
    return startPeriodic(intervalMs, () => this.reload());
  }

  #compile(definition: RegisteredTask): ParameterCheck | null {
    if (!definition.inputSchema) return null;
    try {
      return compileParameterCheck(definition.inputSchema);
    } catch (err) {
      // Registrations are checked before they are stored; this is a row written otherwise. Runs go unchecked, as before.
      const reason = err instanceof InputSchemaError ? err.message : String(err);
      this.#log.warn({ task: definition.name, reason }, "the stored input schema of a task cannot be used; its runs' parameters are not checked");
      return null;
    }
  }

  #changed(tasks: readonly string[]): void {
    if (tasks.length === 0) return;
    this.#limited = new Set([...this.#entries.values()].filter((e) => e.definition.concurrency || e.definition.rateLimit).map((e) => e.definition.name));
    for (const task of tasks) {
      for (const listener of this.#listeners) {
        try {
          listener(task);
        } catch (err) {
          this.#log.error({ err, task }, "a listener of task definition changes threw");
        }
      }
    }
  }
}

/** Creates the registry of this replica and reads what is stored, so it knows every task at once. */
export async function openTaskRegistry(db: Db, log: Logger): Promise<TaskDefinitions> {
  const registry = new TaskDefinitions(db, log);
  await registry.reload();
  return registry;
}
