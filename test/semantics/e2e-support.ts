// Shared by the end-to-end execution-semantics tests: the fixture modules and a typed way to import them.
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Task } from "@offload/sdk";

export const FIXTURES = {
  tasks: fileURLToPath(new URL("./fixtures/e2e-tasks.mjs", import.meta.url)),
  tasksV2: fileURLToPath(new URL("./fixtures/e2e-tasks-v2.mjs", import.meta.url)),
  later: fileURLToPath(new URL("./fixtures/e2e-later.mjs", import.meta.url)),
} as const;

/** Imports a fixture module (plain ESM, untyped) as the tasks it exports, by export name. */
export async function importTasks(path: string): Promise<Record<string, Task>> {
  return (await import(pathToFileURL(path).href)) as Record<string, Task>;
}
