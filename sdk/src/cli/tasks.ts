/** `offload tasks`: the tasks the run API knows, with their load, workers and registered limits. */
import { Command } from "commander";
import { ago, concurrencyCell, rateCell, table } from "./format.js";
import { writeJson } from "./io.js";
import type { CommandContext } from "./runs.js";

/** What a limit cell shows for a task no worker has registered (its limits are not known). */
const UNKNOWN = "?";

export function tasksCommand(ctx: CommandContext): Command {
  return new Command("tasks")
    .description("list the tasks the run API knows, with their backlog, runs in flight, workers and the limits their workers registered")
    .option("--json", "print the tasks as JSON (each registered task's definition too: limits, input JSON Schema, retries, timeout)")
    .action(async (opts: { json?: boolean }) => {
      const tasks = await ctx.client().listTasks();
      if (opts.json) return writeJson(ctx.io, tasks);
      if (tasks.length === 0) return void ctx.io.stdout.write("No tasks: no run was delayed and no worker is serving.\n");
      const now = Date.now();
      ctx.io.stdout.write(
        table(
          ["TASK", "BACKLOG", "IN FLIGHT", "WORKERS", "SLOTS", "CONCURRENCY", "RATE", "LAST HEARTBEAT"],
          tasks.map((t) => {
            const newest = t.workers.map((w) => w.lastSeenAt).sort().at(-1);
            const slots = t.workers.reduce((n, w) => n + w.concurrency, 0);
            const d = t.definition;
            return [
              t.name,
              String(t.backlog),
              String(t.inFlight),
              String(t.workers.length),
              String(slots),
              d ? concurrencyCell(d.concurrency) : UNKNOWN,
              d ? rateCell(d.rateLimit) : UNKNOWN,
              newest ? ago(newest, now) : "-",
            ];
          }),
        ),
      );
      if (tasks.some((t) => !t.definition)) {
        ctx.io.stdout.write(`${UNKNOWN}: no worker has registered the task yet, so its limits are not known and its parameters are not checked.\n`);
      }
    });
}
