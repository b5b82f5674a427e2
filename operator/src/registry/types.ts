import type { RegisteredTask } from "@offload/sdk/internal";

/**
 * The task definitions workers registered (see `TaskRegistration`), as one
 * run API replica knows them: loaded from the database at start, updated at
 * once when a registration reaches this replica, and re-read every few seconds
 * so that every replica converges. Reads are synchronous and cheap (memory):
 * they sit on the submit path.
 */
export interface TaskRegistry {
  /** The task's definition, or undefined when no worker has ever registered it. */
  get(task: string): RegisteredTask | undefined;
  /** Every registered definition. */
  all(): RegisteredTask[];
  /** Names of the tasks with a concurrency or rate limit: their runs wait in the run API until admitted. */
  limited(): ReadonlySet<string>;
  /** Calls `listener` with a task's name whenever its definition changes on this replica; answers an unsubscribe. */
  onChange(listener: (task: string) => void): () => void;
}
