import { join } from "node:path";
import { task, type OffloadClient } from "@offload/sdk";
import { z } from "zod";
import { ROOT } from "../test/support/index.js";

/** The worker module the bench serves: the system tests' fixtures (`add`, `slow`). */
export const FIXTURE_MODULE = join(ROOT, "test/e2e/fixtures/tasks.mjs");

/** A task body that only workers run: the bench only delays. */
function remoteOnly(): never {
  throw new Error("runs in a worker (test/e2e/fixtures/tasks.mjs), not in the bench");
}

/** The app-side view of the tasks the bench delays, bound to `client`. */
export function benchTasks(client: OffloadClient) {
  return {
    /** The fixtures' trivial `add`: what the workers run. */
    add: task(
      { name: "add", input: z.object({ a: z.number(), b: z.number() }), client },
      (): { sum: number; workerId: string } => remoteOnly(),
    ),
    /**
     * A task no worker serves: runs of it are recorded and published, never run,
     * so the API-only scenarios leave nothing for the workers of later scenarios.
     */
    noop: task({ name: "bench-noop", input: z.object({ i: z.number().int() }), client }, (): null => remoteOnly()),
  };
}

export type BenchTasks = ReturnType<typeof benchTasks>;
