// Shared by the end-to-end execution-semantics tests: the fixture modules and a typed way to import them.
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { setDefaultClient, type Task } from "@offload/sdk";
import { killAll, startStack, stopSharedPostgres, type Stack } from "../support/index.js";

export const FIXTURES = {
  tasks: fileURLToPath(new URL("./fixtures/e2e-tasks.mjs", import.meta.url)),
  tasksV2: fileURLToPath(new URL("./fixtures/e2e-tasks-v2.mjs", import.meta.url)),
  later: fileURLToPath(new URL("./fixtures/e2e-later.mjs", import.meta.url)),
} as const;

/** Imports a fixture module (plain ESM, untyped) as the tasks it exports, by export name. */
export async function importTasks(path: string): Promise<Record<string, Task>> {
  return (await import(pathToFileURL(path).href)) as Record<string, Task>;
}

/**
 * The stack of one test file: a real nats-server, PostgreSQL and run API, and
 * one worker serving the fixture tasks, started before the file's tests and
 * stopped after them (on failure too). Meanwhile `delay()` talks to it.
 */
export function useE2eStack(): { readonly stack: Stack } {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack();
    await stack.startWorker({ module: FIXTURES.tasks, concurrency: 2 });
    setDefaultClient(stack.client);
  });
  afterAll(async () => {
    setDefaultClient(undefined);
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
  });
  return {
    get stack(): Stack {
      if (!stack) throw new Error("the test stack did not start (see beforeAll)");
      return stack;
    },
  };
}
