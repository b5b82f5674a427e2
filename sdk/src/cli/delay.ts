/** `offload delay TASK --params JSON [--wait]`: record and dispatch one run, as `task.delay()` does. */
import { Command } from "commander";
import { PRIORITY, type Run } from "../protocol/index.js";
import { EXIT } from "./exit-codes.js";
import { followRun } from "./follow.js";
import { writeJson } from "./io.js";
import { LiveLine } from "./live.js";
import { parseParams, positiveInt, priority } from "./options.js";
import { endText, statusText, type CommandContext } from "./runs.js";

interface DelayOptions {
  params: string;
  idempotencyKey?: string;
  timeout?: number;
  priority?: number;
  concurrencyKey?: string;
  rateLimitKey?: string;
  wait?: boolean;
  json?: boolean;
}

export function delayCommand(ctx: CommandContext): Command {
  return new Command("delay")
    .description("record and dispatch one run of a task (the run API checks the parameters against the input schema a worker registered for the task)")
    .argument("<task>", "the task's name")
    .option("-p, --params <json>", "the task's input as JSON, e.g. '{\"url\":\"https://…\",\"width\":200}'", "{}")
    .option("--idempotency-key <key>", "a second delay with the same key answers the first run")
    .option("--timeout <seconds>", "overrides the task's timeoutSeconds for this run", positiveInt)
    .option("--priority <n>", `among runs held by the task's limits, lower starts first: ${PRIORITY.first} (first) … ${PRIORITY.last} (last), default ${PRIORITY.default}`, priority)
    .option("--concurrency-key <key>", "the key the task's concurrency limit counts this run under (what the task's concurrency.key would compute: give it when you delay without the task's code)")
    .option("--rate-limit-key <key>", "the key the task's rate limit counts this run under (what its rateLimit.key would compute)")
    .option("-w, --wait", "wait for the run to finish, showing its state and progress; exit 1 if it failed or was cancelled")
    .option("--json", "print the run as JSON (with --wait: the finished run, its result included)")
    .action(async (task: string, opts: DelayOptions) => {
      const parameters = parseParams(opts.params);
      const client = ctx.client();
      const run = await client.createRun({
        task,
        parameters,
        ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
        ...(opts.timeout ? { timeoutSeconds: opts.timeout } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        ...(opts.concurrencyKey !== undefined ? { concurrencyKey: opts.concurrencyKey } : {}),
        ...(opts.rateLimitKey !== undefined ? { rateLimitKey: opts.rateLimitKey } : {}),
      });
      // On stderr, so that stdout (the run, or its result) stays what scripts read.
      for (const warning of run.warnings ?? []) ctx.io.stderr.write(`offload: warning: ${warning}\n`);
      if (!opts.wait) {
        if (opts.json) writeJson(ctx.io, run);
        else ctx.io.stdout.write(`Run ${run.id} of ${run.task} is ${run.state}.\nFollow it with: offload runs get ${run.id}\n`);
        return;
      }
      const live = new LiveLine(ctx.io.stderr);
      let end: Run;
      try {
        end = await followRun(client, run.id, (r) => live.set(statusText(r)));
      } finally {
        live.stop();
      }
      if (end.state === "COMPLETED" && end.resultRef !== null) {
        // A large result lives in the results store: the result call reads it from there.
        end = { ...end, result: (await client.getResult(end.id)).result };
      }
      if (opts.json) writeJson(ctx.io, end);
      else if (end.state === "COMPLETED") ctx.io.stdout.write(`${JSON.stringify(end.result)}\n`);
      ctx.io.stderr.write(`${endText(end)}\n`);
      ctx.exit(end.state === "COMPLETED" ? EXIT.OK : EXIT.RUN_FAILED);
    });
}
