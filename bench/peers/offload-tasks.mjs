// The task the bench's Offload workers serve: plain ESM, loaded by offload-worker as any user module.
import { task } from "@offload/sdk";
import { z } from "zod";

/** Does nothing: the bench measures the system around the task, not the task. */
export const noop = task({ name: "noop", input: z.object({ i: z.number().int() }) }, () => null);
