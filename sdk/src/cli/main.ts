/**
 * `offload`: the command line of the run API, on the SDK's own client (so it
 * reads OFFLOAD_API_URL and the API's credentials exactly as `delay()` does).
 * Errors are one line with the API's `OFFLOAD_*` code, never a stack; the
 * exit code says what kind of failure it was (see exit-codes.ts).
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { OffloadClient } from "../client.js";
import { isOffloadError } from "../errors.js";
import { delayCommand } from "./delay.js";
import { EXIT, EXIT_CODES_HELP, exitCodeOf, UsageError, type ExitCode } from "./exit-codes.js";
import type { CliIo } from "./io.js";
import { runsCommand, type CommandContext } from "./runs.js";
import { schedulesCommand } from "./schedules.js";
import { tasksCommand } from "./tasks.js";

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Builds the `offload` program; `apiUrl` given by `--api-url` wins over OFFLOAD_API_URL. */
export function buildProgram(io: CliIo, setExit: (code: ExitCode) => void): Command {
  let client: OffloadClient | undefined;
  const program = new Command("offload");
  const ctx: CommandContext = {
    io,
    exit: setExit,
    client: () => (client ??= new OffloadClient(program.opts<{ apiUrl?: string }>().apiUrl ? { apiUrl: program.opts<{ apiUrl: string }>().apiUrl } : {})),
  };
  program
    .description("See and drive Offload runs from a terminal or a script.")
    .version(version, "-V, --version", "print the version")
    .option("--api-url <url>", "the run API (default: OFFLOAD_API_URL, else http://127.0.0.1:8080)")
    .addHelpText("after", EXIT_CODES_HELP)
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride();
  for (const cmd of [runsCommand(ctx), tasksCommand(ctx), delayCommand(ctx), schedulesCommand(ctx)]) program.addCommand(cmd);
  // Every subcommand reports usage errors through the same exit path as the program.
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) }).showHelpAfterError("(add --help for usage)");
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/** Runs `offload` with `argv` (as process.argv: node, script, args…); resolves with the exit code. */
export async function main(argv: readonly string[] = process.argv, io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end the parse with exit code 0; everything else is a usage error, already printed.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    io.stderr.write(`${describe(err)}\n`);
    return exitCodeOf(err);
  }
}

// One line for people: the API's code and message; a hint where the fix is known.
function describe(err: unknown): string {
  if (err instanceof UsageError) return `offload: ${err.message}`;
  if (isOffloadError(err)) {
    const hint =
      err.code === "OFFLOAD_UNAUTHORIZED"
        ? " (set OFFLOAD_API_TOKEN to the run API's token, or OFFLOAD_TOKEN_FILE to a file holding a ServiceAccount token for audience offload)"
        : err.code === "OFFLOAD_RUN_NOT_FOUND"
          ? " (list runs with: offload runs ls)"
          : err.code === "OFFLOAD_SCHEDULE_NOT_FOUND"
            ? " (list schedules with: offload schedules ls)"
            : "";
    const issues = (err as { issues?: { path: string; message: string }[] }).issues;
    const details = issues?.length ? `\n${issues.map((i) => `  ${i.path || "(body)"}: ${i.message}`).join("\n")}` : "";
    return `offload: ${err.code}: ${err.message}${hint}${details}`;
  }
  return `offload: unexpected error: ${err instanceof Error ? err.message : String(err)}`;
}
