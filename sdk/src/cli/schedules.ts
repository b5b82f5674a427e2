/** `offload schedules …`: list, show, set and remove the run API's cron schedules. */
import { Command, Option } from "commander";
import { ConcurrencyPolicySchema, PRIORITY, type ConcurrencyPolicy, type PutScheduleBody } from "../protocol/index.js";
import { ago, scheduleDetails, schedulesTable } from "./format.js";
import { writeJson } from "./io.js";
import { parseParams, positiveInt, priority } from "./options.js";
import type { CommandContext } from "./runs.js";

interface NamespaceOption {
  namespace?: string;
}

interface SetOptions extends NamespaceOption {
  task: string;
  cron: string;
  tz?: string;
  params?: string;
  policy: ConcurrencyPolicy;
  suspend?: boolean;
  startingDeadline?: number;
  priority?: number;
  json?: boolean;
}

const namespaceOption = (): Option =>
  new Option("-n, --namespace <ns>", "the schedules' namespace (default: the caller's own, as for runs; with a shared token, every namespace for ls)");

export function schedulesCommand(ctx: CommandContext): Command {
  const schedules = new Command("schedules").description("list, show, set and remove cron schedules (each fires one run of a task per scheduled time)");

  schedules
    .command("ls")
    .alias("list")
    .description("list the schedules, with their last and next times and the run each started last")
    .addOption(namespaceOption())
    .option("--json", "print the schedules as JSON ({schedules})")
    .action(async (opts: NamespaceOption & { json?: boolean }) => {
      const list = await ctx.client().listSchedules(ns(opts));
      if (opts.json) writeJson(ctx.io, { schedules: list });
      else ctx.io.stdout.write(schedulesTable(list));
    });

  schedules
    .command("get")
    .description("show one schedule")
    .argument("<key>", "the schedule's key (a TaskSchedule's is taskschedule.<name>)")
    .addOption(namespaceOption())
    .option("--json", "print the schedule as JSON")
    .action(async (key: string, opts: NamespaceOption & { json?: boolean }) => {
      const schedule = await ctx.client().getSchedule(key, ns(opts));
      if (opts.json) writeJson(ctx.io, schedule);
      else ctx.io.stdout.write(scheduleDetails(schedule));
    });

  schedules
    .command("set")
    .description("create the schedule KEY, or replace it whole (an option left out takes its default again)")
    .argument("<key>", "the schedule's key: letters, digits, '.', '_', ':' and '-'")
    .requiredOption("--task <name>", "the task each scheduled time runs")
    .requiredOption("--cron <expr>", "when: five cron fields (minute hour day-of-month month day-of-week), six with seconds first, or @hourly, @daily …; quote it for the shell")
    .option("--tz <zone>", "the IANA time zone the cron expression is read in, e.g. Europe/Paris (default UTC)")
    .option("-p, --params <json>", "the task's input as JSON, the same for every run")
    .addOption(
      new Option("--policy <policy>", "when a time comes and the last run has not finished: Allow (start anyway), Forbid (skip this time), Replace (cancel it, start the next)")
        .choices(ConcurrencyPolicySchema.options)
        .default("Allow"),
    )
    .option("--suspend", "keep the schedule but start no runs (set it again without --suspend to resume; times passed meanwhile are missed)")
    .option("--starting-deadline <seconds>", "a time missed while the run API was down still fires if at most this late (default: the latest missed time always fires, once)", positiveInt)
    .option("--priority <n>", `the runs' priority among runs held by the task's limits: ${PRIORITY.first} (first) … ${PRIORITY.last} (last)`, priority)
    .addOption(namespaceOption())
    .option("--json", "print the schedule as the API stored it")
    .action(async (key: string, opts: SetOptions) => {
      const body: PutScheduleBody = {
        task: opts.task,
        schedule: opts.cron,
        concurrencyPolicy: opts.policy,
        suspend: opts.suspend === true,
        ...(opts.tz !== undefined ? { timeZone: opts.tz } : {}),
        ...(opts.params !== undefined ? { parameters: parseParams(opts.params) } : {}),
        ...(opts.startingDeadline !== undefined ? { startingDeadlineSeconds: opts.startingDeadline } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
      };
      const s = await ctx.client().putSchedule(key, body);
      if (opts.json) return writeJson(ctx.io, s);
      const when = s.suspend ? "suspended: it starts no runs" : s.nextScheduleTime ? `next run ${s.nextScheduleTime} (${ago(s.nextScheduleTime)})` : "no next time";
      ctx.io.stdout.write(`Schedule ${s.key} runs ${s.task} at "${s.schedule}" (${s.timeZone}); ${when}.\n`);
    });

  schedules
    .command("rm")
    .alias("delete")
    .description("remove a schedule: it starts no more runs (the runs it started go on)")
    .argument("<key>", "the schedule's key")
    .addOption(namespaceOption())
    .action(async (key: string, opts: NamespaceOption) => {
      await ctx.client().deleteSchedule(key, ns(opts));
      ctx.io.stdout.write(`Schedule ${key} removed.\n`);
    });

  return schedules;
}

const ns = (opts: NamespaceOption): { namespace?: string } => (opts.namespace !== undefined ? { namespace: opts.namespace } : {});
