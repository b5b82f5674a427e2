import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, isTask, type Task } from "@offload/sdk/internal";

/**
 * Imports the module at `path` (relative to `cwd`) and returns the tasks it
 * exports: named exports and a default export that is a task or an array of
 * tasks. With `names`, only those (in that order); an unknown name is an error
 * that lists the tasks there are.
 */
export async function loadTasks(path: string, names?: readonly string[], cwd: string = process.cwd()): Promise<Task[]> {
  const file = resolve(cwd, path);
  try {
    await stat(file);
  } catch {
    throw new ConfigError(`offload-worker: task module ${file} does not exist (check --module / OFFLOAD_MODULE)`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = new ConfigError(`offload-worker: cannot load task module ${file}: ${(err as Error)?.stack ?? String(err)}`);
    throw e;
  }
  const found = new Map<string, Task>();
  const add = (value: unknown, where: string): void => {
    if (!isTask(value)) return;
    const seen = found.get(value.name);
    if (seen && seen !== value) throw new ConfigError(`offload-worker: module ${file} exports two different tasks named "${value.name}" (one as ${where})`);
    found.set(value.name, value);
  };
  for (const [key, value] of Object.entries(mod)) {
    if (key === "default" && Array.isArray(value)) value.forEach((v, i) => add(v, `default[${i}]`));
    else add(value, key);
  }
  if (found.size === 0) {
    throw new ConfigError(`offload-worker: module ${file} exports no task; export the values task() returns (export const resize = task(...))`);
  }
  if (!names) return [...found.values()];
  const unknown = names.filter((n) => !found.has(n));
  if (unknown.length > 0) {
    throw new ConfigError(
      `offload-worker: module ${file} has no task ${unknown.map((n) => `"${n}"`).join(", ")} (from --tasks / OFFLOAD_TASKS); it has: ${[...found.keys()].join(", ")}`,
    );
  }
  return [...new Set(names)].map((n) => found.get(n) as Task);
}
