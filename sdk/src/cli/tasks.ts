/** `offload tasks`: the tasks the run API knows, with their load and workers. */
import { Command } from "commander";
import { ago, table } from "./format.js";
import { writeJson } from "./io.js";
import type { CommandContext } from "./runs.js";

export function tasksCommand(ctx: CommandContext): Command {
  return new Command("tasks")
    .description("list the tasks the run API knows, with their backlog, runs in flight and workers")
    .option("--json", "print the tasks as JSON")
    .action(async (opts: { json?: boolean }) => {
      const tasks = await ctx.client().listTasks();
      if (opts.json) return writeJson(ctx.io, tasks);
      if (tasks.length === 0) return void ctx.io.stdout.write("No tasks: no run was delayed and no worker is serving.\n");
      const now = Date.now();
      ctx.io.stdout.write(
        table(
          ["TASK", "BACKLOG", "IN FLIGHT", "WORKERS", "SLOTS", "LAST HEARTBEAT"],
          tasks.map((t) => {
            const newest = t.workers.map((w) => w.lastSeenAt).sort().at(-1);
            const slots = t.workers.reduce((n, w) => n + w.concurrency, 0);
            return [t.name, String(t.backlog), String(t.inFlight), String(t.workers.length), String(slots), newest ? ago(newest, now) : "-"];
          }),
        ),
      );
    });
}
