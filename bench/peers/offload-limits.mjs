// The tasks of `npm run bench:limits`: the same short body without limits and with a concurrency limit of 5 per
// key. Plain ESM, loaded by offload-worker as any user module.
import { setTimeout as sleep } from "node:timers/promises";
import { task } from "@offload/sdk";
import { z } from "zod";

const input = z.object({ key: z.string(), ms: z.number().int().min(0) });
const body = async ({ ms }) => (ms > 0 ? void (await sleep(ms)) : null);

/** No limits: dispatched straight into JetStream. */
export const free = task({ name: "lim-free", input, retries: 0 }, body);

/** At most 5 running per key, across every worker: held in the run API, dispatched by admission. */
export const keyed = task({ name: "lim-keyed", input, retries: 0, concurrency: { limit: 5, key: (i) => i.key } }, body);
