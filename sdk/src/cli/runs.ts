/** `offload runs …`: list, show, follow, cancel and retry runs. */
import { Command, Option } from "commander";
import type { OffloadClient, RunLogs } from "../client.js";
import { RUN_STATES, isTerminal, type Run, type RunLogLine, type RunState } from "../protocol/index.js";
import { EXIT, type ExitCode } from "./exit-codes.js";
import { followRun } from "./follow.js";
import { progressText, runDetails, runsTable, stateText, waitingText } from "./format.js";
import { writeJson, type CliIo } from "./io.js";
import { LiveLine } from "./live.js";
import { positiveInt } from "./options.js";

/** What every command gets: the client (built on first use, so `--help` needs no configuration) and the streams. */
export interface CommandContext {
  client(): OffloadClient;
  io: CliIo;
  /** Sets the process's exit code for a command that finished without throwing. */
  exit(code: ExitCode): void;
}

const WATCH_INTERVAL_MS = 1000;

export function runsCommand(ctx: CommandContext): Command {
  const runs = new Command("runs").description("list, show, follow, cancel and retry runs");

  runs
    .command("ls")
    .alias("list")
    .description("list runs, newest first")
    .option("--task <name>", "only runs of this task")
    .addOption(new Option("--state <state>", "only runs in this state").choices(RUN_STATES))
    .option("--limit <n>", "at most this many runs (1-500)", positiveInt, 20)
    .option("--watch", "keep the list up to date until every run in it has finished (Ctrl-C stops earlier)")
    .option("--json", "print the page as JSON ({runs, nextCursor}); with --watch, each run as a line of JSON when it changes")
    .action(async (opts: { task?: string; state?: RunState; limit: number; watch?: boolean; json?: boolean }) => {
      const client = ctx.client();
      const query = { task: opts.task, state: opts.state, limit: Math.min(opts.limit, 500) };
      if (!opts.watch) {
        const page = await client.listRuns(query);
        if (opts.json) writeJson(ctx.io, page);
        else ctx.io.stdout.write(runsTable(page.runs));
        return;
      }
      await watchRuns(ctx, client, query, opts.json === true);
    });

  runs
    .command("get")
    .description("show one run")
    .argument("<id>", "the run's id")
    .option("--json", "print the run as JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      const run = await ctx.client().getRun(id);
      if (opts.json) writeJson(ctx.io, run);
      else ctx.io.stdout.write(runDetails(run));
    });

  runs
    .command("logs")
    .description("print what a run logged through ctx.log, every attempt, oldest first")
    .argument("<id>", "the run's id")
    .option("-f, --follow", "keep printing new lines until the run finishes; exit 1 if it failed or was cancelled")
    .option("--json", "print each line as a line of JSON")
    .action(async (id: string, opts: { follow?: boolean; json?: boolean }) => {
      const client = ctx.client();
      const printer = new LogPrinter(ctx.io, opts.json === true);
      if (!opts.follow) {
        printer.show(await client.getLogs(id));
        return;
      }
      await client.getRun(id); // an unknown id is exit 3 before anything else
      const live = new LiveLine(ctx.io.stderr);
      printer.live = live;
      let polling = Promise.resolve();
      const poll = setInterval(() => {
        polling = polling.then(() => client.getLogs(id).then((logs) => printer.show(logs), () => undefined));
      }, 1000);
      let run: Run;
      try {
        run = await followRun(client, id, (r) => live.set(statusText(r)));
      } finally {
        clearInterval(poll);
        await polling;
      }
      // Lines logged before the outcome are in the log stream by now (the worker sends them first).
      printer.show(await client.getLogs(id));
      live.stop();
      ctx.io.stderr.write(`${endText(run)}\n`);
      ctx.exit(run.state === "COMPLETED" ? EXIT.OK : EXIT.RUN_FAILED);
    });

  runs
    .command("cancel")
    .description("cancel a run that has not finished (a RUNNING one is asked to stop)")
    .argument("<id>", "the run's id")
    .option("--json", "print the run as the API answered it")
    .action(async (id: string, opts: { json?: boolean }) => {
      const run = await ctx.client().cancelRun(id);
      if (opts.json) writeJson(ctx.io, run);
      else if (run.state === "CANCELLED") ctx.io.stdout.write(`Run ${run.id} is CANCELLED.\n`);
      else ctx.io.stdout.write(`Run ${run.id} was ${run.state}: its worker was asked to stop it; it becomes CANCELLED shortly.\n`);
    });

  runs
    .command("retry")
    .description("run a FAILED run again (same id; attempts count on)")
    .argument("<id>", "the run's id")
    .option("--json", "print the run as the API answered it")
    .action(async (id: string, opts: { json?: boolean }) => {
      const run = await ctx.client().retryRun(id);
      if (opts.json) writeJson(ctx.io, run);
      else ctx.io.stdout.write(`Run ${run.id} is ${run.state} again (attempt ${run.attempts + 1} next).\n`);
    });

  return runs;
}

/**
 * The live line's text for a run that is going: "RUNNING (attempt 2) 40%
 * resized 4 of 10", or for a run held by a limit "PENDING, waiting for
 * concurrency limit 2 of key "acme" (2 running)".
 */
export function statusText(run: Run): string {
  const progress = progressText(run);
  const waiting = run.waitingFor ? `, waiting for ${waitingText(run.waitingFor)}` : "";
  return `${run.task} ${run.id} ${run.state}${run.attempts > 1 ? ` (attempt ${run.attempts})` : ""}${waiting}${progress ? ` ${progress}` : ""}`;
}

/** The line said once a run waited for ended. */
export function endText(run: Run): string {
  const err = run.error ? `: ${run.error.type}: ${run.error.message}` : "";
  return `Run ${run.id} ${run.state}${err}`;
}

// Prints each log line once, however many times the whole log is re-read:
// the n-th copy of an identical line is a line of its own.
class LogPrinter {
  readonly #printed = new Set<string>();
  live: LiveLine | undefined;
  constructor(
    readonly io: CliIo,
    readonly json: boolean,
  ) {}

  show(logs: RunLogs): void {
    const count = new Map<string, number>();
    for (const line of logs.lines) {
      const base = `${line.at}|${line.attempt}|${line.level}|${line.msg}`;
      const n = (count.get(base) ?? 0) + 1;
      count.set(base, n);
      const key = `${base}|${n}`;
      if (this.#printed.has(key)) continue;
      this.#printed.add(key);
      const text = this.json ? JSON.stringify(line) : formatLogLine(line);
      if (this.live) this.live.print(text);
      else this.io.stdout.write(`${text}\n`);
    }
  }
}

function formatLogLine(line: RunLogLine): string {
  const data = line.data && Object.keys(line.data).length ? ` ${JSON.stringify(line.data)}` : "";
  return `${line.at} #${line.attempt} ${line.level.toUpperCase().padEnd(5)} ${line.msg}${data}`;
}

// `runs ls --watch`: re-reads the page every second. On a terminal the table
// is redrawn in place; elsewhere the first table is printed, then one line per
// run that appears or changes. Ends once every run it has shown has finished
// (a run that left the filter, e.g. --state RUNNING, counts as finished).
async function watchRuns(ctx: CommandContext, client: OffloadClient, query: { task?: string | undefined; state?: RunState | undefined; limit: number }, json: boolean): Promise<void> {
  const tty = ctx.io.stdout.isTTY === true && !json;
  const known = new Map<string, string>();
  let drawnLines = 0;
  for (let first = true; ; first = false) {
    const { runs } = await client.listRuns(query);
    if (tty) {
      const text = runsTable(runs);
      ctx.io.stdout.write(`${drawnLines ? `\x1b[${drawnLines}A\x1b[J` : ""}${text}`);
      drawnLines = text.split("\n").length - 1;
    }
    for (const run of [...runs].reverse()) {
      const key = `${stateText(run)}|${run.attempts}|${progressText(run)}`;
      if (known.get(run.id) === key) continue;
      known.set(run.id, key);
      if (json) writeJson(ctx.io, run);
      else if (!tty && !first) ctx.io.stdout.write(`${new Date().toISOString()}  ${run.id}  ${run.task}  ${stateText(run)}  ${progressText(run)}`.trimEnd() + "\n");
    }
    if (first && !tty && !json) ctx.io.stdout.write(runsTable(runs));
    const shown = new Set(runs.map((r) => r.id));
    const going = runs.some((r) => !isTerminal(r.state));
    const left = [...known.keys()].some((id) => !shown.has(id));
    if (known.size > 0 && !going && (runs.length > 0 || left)) return;
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
  }
}

