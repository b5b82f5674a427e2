import type { TaskInfo } from "@offload/sdk/internal";
import { realClock, type Clock } from "./queue.js";

/**
 * The run API's task list (`GET /v1/tasks`), fetched at most once every
 * `maxAgeMs` and shared by every reconcile that needs it: each TaskWorker's
 * backlog and each PENDING TaskRun's "does any worker serve it" check.
 */
export class TaskListCache {
  #entry: { at: number; tasks: Promise<TaskInfo[] | undefined> } | undefined;

  constructor(
    private readonly list: () => Promise<TaskInfo[]>,
    private readonly clock: Clock = realClock,
    private readonly maxAgeMs = 5000,
  ) {}

  /** The task list, at most `maxAgeMs` old when asked for; undefined when the run API could not answer. */
  get(): Promise<TaskInfo[] | undefined> {
    const t = this.clock.now();
    if (!this.#entry || t - this.#entry.at > this.maxAgeMs) {
      this.#entry = { at: t, tasks: this.list().catch(() => undefined) };
    }
    return this.#entry.tasks;
  }
}
