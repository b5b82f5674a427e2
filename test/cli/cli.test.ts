import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Run } from "@offload/sdk";
import { main } from "../../sdk/src/cli/main.js";
import type { Schedule } from "../../sdk/src/protocol/index.js";
import { freePort, killAll, ROOT, startProcess, startStack, stopSharedPostgres, waitFor, waitForRun, type Stack } from "../support/index.js";

const BIN = join(ROOT, "sdk/bin/offload.js");
const FIXTURES = join(import.meta.dirname, "fixtures/tasks.mjs");
const TOKEN = "cli-test-token";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let stack: Stack;
let dir: string;
const env = (): Record<string, string> => ({ OFFLOAD_API_URL: stack.apiUrl, OFFLOAD_API_TOKEN: TOKEN });

/** Runs `offload args…` to its end (not on a terminal: pipes). */
async function offload(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { env: { ...process.env, ...env(), ...extraEnv } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Starts `offload args…` and leaves it running; stdout and stderr are merged in `output()`. */
function start(args: string[]) {
  return startProcess(`offload ${args[0]} ${args[1] ?? ""}`, process.execPath, [BIN, ...args], env());
}

const gateRun = async (gate: string): Promise<Run> => stack.client.createRun({ task: "gated", parameters: { dir, gate } });
const untilRunning = (id: string): Promise<Run> => waitForRun(() => stack.client.getRun(id), (r) => r.state === "RUNNING", "the run to be RUNNING");

/** Asserts an error is one line with the API's code, never a stack. */
function expectOneLineError(r: Result, code: string): void {
  expect(r.stderr).toContain(code);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe("the offload CLI against a real stack", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-cli-"));
    stack = await startStack({ token: TOKEN });
    await stack.startWorker({ module: FIXTURES, concurrency: 4 });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("--help on every command, --version, and usage errors exit 2", async () => {
    // In this process (the parse is what is tested; the other tests run the real command): a spawn costs seconds on a busy machine.
    const inProcess = async (args: string[]): Promise<Result> => {
      let stdout = "";
      let stderr = "";
      const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } } as unknown as Parameters<typeof main>[1];
      const code = await main(["node", "offload", ...args], io);
      return { code, stdout, stderr };
    };
    const commands = [["runs"], ["runs", "ls"], ["runs", "get"], ["runs", "logs"], ["runs", "cancel"], ["runs", "retry"], ["tasks"], ["delay"], ["schedules"], ["schedules", "ls"], ["schedules", "get"], ["schedules", "set"], ["schedules", "rm"]];
    for (const args of [["--help"], ...commands.map((c) => [...c, "--help"])]) {
      const r = await inProcess(args);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toMatch(/^Usage: offload/);
    }
    expect((await inProcess(["--help"])).stdout).toContain("Exit codes:");
    const { version } = JSON.parse(readFileSync(join(ROOT, "sdk/package.json"), "utf8")) as { version: string };
    expect((await offload(["--version"])).stdout.trim()).toBe(version);

    const badState = await offload(["runs", "ls", "--state", "DONE"]);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain("Allowed choices are SCHEDULED");
    const badJson = await inProcess(["delay", "add", "--params", "{a:1}"]);
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain("--params is not JSON");
    expect((await inProcess(["runs", "frobnicate"])).code).toBe(2);
    const badPriority = await inProcess(["delay", "add", "--priority", "9"]);
    expect(badPriority.code).toBe(2);
    expect(badPriority.stderr).toContain("must be a whole number from 1 (first) to 5 (last)");
    expect((await inProcess(["schedules", "set", "k", "--task", "add", "--cron", "* * * * *", "--policy", "Sometimes"])).stderr).toContain("Allowed choices are Allow, Forbid, Replace");
    expect((await inProcess(["schedules", "set", "k", "--task", "add"])).stderr).toContain("required option '--cron <expr>' not specified");
  });

  it("delay --wait: the result on stdout and exit 0; --json gives the finished run; a failing run exits 1 with its error", async () => {
    const table = await offload(["delay", "add", "--params", '{"a":2,"b":3}', "--wait"]);
    expect(table.code).toBe(0);
    expect(JSON.parse(table.stdout)).toEqual({ sum: 5 });
    expect(table.stderr).toMatch(/Run [0-9a-f-]{36} COMPLETED/);

    const json = await offload(["delay", "add", "--params", '{"a":1,"b":1}', "--wait", "--json"]);
    expect(json.code).toBe(0);
    const run = JSON.parse(json.stdout) as Run;
    expect(run).toMatchObject({ task: "add", state: "COMPLETED", result: { sum: 2 }, attempts: 1 });
    expect(await stack.client.getRun(run.id)).toMatchObject({ state: "COMPLETED" });

    const failed = await offload(["delay", "boom", "--params", '{"message":"no disk"}', "--wait"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/FAILED: Error: no disk/);
    expect(failed.stdout).toBe("");

    const queued = await offload(["delay", "add", "--params", '{"a":0,"b":0}', "--json"]);
    expect(queued.code).toBe(0);
    expect(["PENDING", "RUNNING", "COMPLETED"]).toContain((JSON.parse(queued.stdout) as Run).state);
  });

  it("runs get and runs ls: a table for people, --json for scripts, 3 for an unknown run", async () => {
    const older = await stack.client.createRun({ task: "add", parameters: { a: 0, b: 1 } });
    await waitForRun(() => stack.client.getRun(older.id), (r) => r.state === "COMPLETED", "the run to complete");
    const run = await stack.client.createRun({ task: "add", parameters: { a: 20, b: 22 } });
    await waitForRun(() => stack.client.getRun(run.id), (r) => r.state === "COMPLETED", "the run to complete");

    const get = await offload(["runs", "get", run.id]);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^ID:\\s+${run.id}$`, "m"));
    expect(get.stdout).toMatch(/^State:\s+COMPLETED$/m);
    expect(get.stdout).toMatch(/^Result:\s+\{"sum":42\}$/m);
    expect(get.stdout).toMatch(/^Parameters:\s+\{"a":20,"b":22\}$/m);
    const getJson = await offload(["runs", "get", run.id, "--json"]);
    expect(JSON.parse(getJson.stdout)).toEqual(await stack.client.getRun(run.id));

    const ls = await offload(["runs", "ls", "--task", "add", "--limit", "2"]);
    expect(ls.code).toBe(0);
    const [header, ...rows] = ls.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^ID\s+TASK\s+STATE\s+ATTEMPTS\s+CREATED\s+DURATION\s+PROGRESS$/);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^${run.id}\\s+add\\s+COMPLETED\\s+1\\s+(just now|\\d+s ago)`));
    // Aligned: every row's TASK column starts where the header's does.
    for (const row of rows) expect(row.indexOf(" add ") + 1).toBe(header!.indexOf("TASK"));
    const lsJson = JSON.parse((await offload(["runs", "ls", "--task", "add", "--limit", "1", "--json"])).stdout) as { runs: Run[]; nextCursor: string | null };
    expect(lsJson.runs.map((r) => r.id)[0]).toBe(run.id);
    expect(lsJson.nextCursor).toEqual(expect.any(String));
    expect((await offload(["runs", "ls", "--state", "FAILED", "--task", "add"])).stdout).toBe("No runs.\n");

    const missing = await offload(["runs", "get", "00000000-0000-4000-8000-000000000000"]);
    expect(missing.code).toBe(3);
    expectOneLineError(missing, "OFFLOAD_RUN_NOT_FOUND");
  });

  it("runs logs prints the run's lines; --follow prints them as they come and ends with the run", async () => {
    const run = await gateRun("logs");
    await untilRunning(run.id);
    const follow = start(["runs", "logs", run.id, "--follow"]);
    await follow.waitForOutput(/INFO\s+started \{"gate":"logs"\}/);
    await writeFile(join(dir, "logs"), "");
    expect(await follow.exited).toBe(0);
    expect(follow.output()).toMatch(/INFO\s+gate open/);
    expect(follow.output()).toMatch(/COMPLETED/);
    expect(follow.output().match(/started/g)).toHaveLength(1);

    const logs = await offload(["runs", "logs", run.id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trimEnd().split("\n").map((l) => l.replace(/^\S+ #1 /, ""))).toEqual(['INFO  started {"gate":"logs"}', "INFO  gate open"]);
    const json = (await offload(["runs", "logs", run.id, "--json"])).stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { msg: string });
    expect(json.map((l) => l.msg)).toEqual(["started", "gate open"]);
  });

  it("runs ls --watch shows runs change and ends once they finished", async () => {
    const task = await freePort(); // a unique gate name
    const run = await gateRun(`watch-${task}`);
    await untilRunning(run.id);
    const watch = start(["runs", "ls", "--watch", "--task", "gated", "--state", "RUNNING"]);
    await watch.waitForOutput(new RegExp(`${run.id}\\s+gated\\s+RUNNING`));
    await writeFile(join(dir, `watch-${task}`), "");
    // The run leaves the RUNNING filter: the watch has nothing left going, and ends.
    expect(await watch.exited).toBe(0);

    const json = start(["runs", "ls", "--watch", "--json", "--task", "add", "--limit", "1"]);
    expect(await json.exited).toBe(0);
    expect((JSON.parse(json.output().trim().split("\n")[0]!) as Run).task).toBe("add");
  });

  it("delay --wait shows the run's progress on its status lines while it runs", async () => {
    const waiting = start(["delay", "gated", "--params", JSON.stringify({ dir, gate: "progress" }), "--wait"]);
    await waiting.waitForOutput(/gated \S+ RUNNING 50% 1\/2 halfway/);
    await writeFile(join(dir, "progress"), "");
    expect(await waiting.exited).toBe(0);
    expect(waiting.output()).toContain('{"gate":"progress"}');
  });

  it("runs cancel and runs retry say what they did; refused actions exit 6 with the API's code", async () => {
    const run = await gateRun("never-opened");
    await untilRunning(run.id);
    const cancel = await offload(["runs", "cancel", run.id]);
    expect(cancel.code).toBe(0);
    // Answered CANCELLED, or RUNNING with the worker asked to stop, as the API had it at that moment.
    expect(cancel.stdout).toMatch(new RegExp(`^Run ${run.id} (is CANCELLED\\.|was RUNNING: its worker was asked to stop it)`));
    await waitForRun(() => stack.client.getRun(run.id), (r) => r.state === "CANCELLED", "the run to be cancelled");

    const done = await stack.client.createRun({ task: "add", parameters: { a: 1, b: 2 } });
    await waitForRun(() => stack.client.getRun(done.id), (r) => r.state === "COMPLETED", "the run to complete");
    const late = await offload(["runs", "cancel", done.id]);
    expect(late.code).toBe(6);
    expectOneLineError(late, "OFFLOAD_RUN_FINISHED");

    const failed = await stack.client.createRun({ task: "boom", parameters: { message: "flaky" } });
    await waitForRun(() => stack.client.getRun(failed.id), (r) => r.state === "FAILED", "the run to fail");
    // For people, the task's stack under its error, indented; for scripts it is simply part of the run.
    const shown = await offload(["runs", "get", failed.id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^Error:\s+Error: flaky$/m);
    expect(shown.stdout).toMatch(/^Stack:\n {2}Error: flaky\n {6}at .*cli\/fixtures\/tasks\.mjs:\d+:\d+/m);
    const shownJson = JSON.parse((await offload(["runs", "get", failed.id, "--json"])).stdout) as Run;
    expect(shownJson.error?.stack).toMatch(/^Error: flaky\n\s+at .*tasks\.mjs/);
    const retry = await offload(["runs", "retry", failed.id, "--json"]);
    expect(retry.code).toBe(0);
    expect((JSON.parse(retry.stdout) as Run).state).toBe("PENDING");
    const again = await waitForRun(() => stack.client.getRun(failed.id), (r) => r.state === "FAILED" && r.attempts === 2, "the retry to fail again");
    expect(again.attempts).toBe(2);
    const notRetryable = await offload(["runs", "retry", done.id]);
    expect(notRetryable.code).toBe(6);
    expectOneLineError(notRetryable, "OFFLOAD_RUN_NOT_RETRYABLE");
  });

  it("tasks lists the served tasks with their workers and the limits the worker registered", async () => {
    const table = await offload(["tasks"]);
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^TASK\s+BACKLOG\s+IN FLIGHT\s+WORKERS\s+SLOTS\s+CONCURRENCY\s+RATE\s+LAST HEARTBEAT$/);
    // Registered without limits: "-"; the fixture's held task: one at a time per key, 100 starts a minute for the task.
    expect(rows.find((r) => r.startsWith("add "))).toMatch(/^add\s+\d+\s+\d+\s+1\s+4\s+-\s+-\s+(just now|\d+s ago)$/);
    expect(rows.find((r) => r.startsWith("held "))).toMatch(/^held\s+\d+\s+\d+\s+1\s+4\s+1\/key\s+100\/60s\s+(just now|\d+s ago)$/);
    const json = JSON.parse((await offload(["tasks", "--json"])).stdout) as { name: string; workers: unknown[]; definition?: { concurrency?: unknown; inputSchema?: unknown } }[];
    expect(json.map((t) => t.name)).toEqual(expect.arrayContaining(["add", "boom", "gated", "held"]));
    expect(json.find((t) => t.name === "held")?.definition).toMatchObject({ concurrency: { limit: 1, keyed: true }, inputSchema: { type: "object" } });
  });

  it("a run held by its task's per-key limit: runs get says what it waits for, runs ls marks it, and it starts once the slot frees", async () => {
    const gate = `held-${await freePort()}`;
    const params = JSON.stringify({ dir, gate, tenant: "acme" });
    // No task code here: the CLI is given the key that the task's concurrency.key would compute.
    const first = JSON.parse((await offload(["delay", "held", "--params", params, "--concurrency-key", "acme", "--json"])).stdout) as Run;
    await untilRunning(first.id);
    const second = await offload(["delay", "held", "--params", params, "--concurrency-key", "acme", "--priority", "1", "--json"]);
    expect(second.code).toBe(0);
    expect(second.stderr).toBe(""); // a registered task: nothing unchecked to warn about
    const held = JSON.parse(second.stdout) as Run;
    expect(held).toMatchObject({ priority: 1, concurrencyKey: "acme", rateLimitKey: null });
    await waitForRun(() => stack.client.getRun(held.id), (r) => r.waitingFor?.kind === "concurrency", "the second run to wait for the tenant's slot");

    const get = await offload(["runs", "get", held.id]);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/^State:\s+PENDING$/m);
    expect(get.stdout).toMatch(/^Priority:\s+1$/m);
    expect(get.stdout).toMatch(/^Concurrency key:\s+"acme"$/m);
    expect(get.stdout).toMatch(/^Waiting for:\s+concurrency limit 1 of key "acme" \(1 running\)$/m);
    const ls = await offload(["runs", "ls", "--task", "held", "--limit", "2"]);
    expect(ls.stdout).toMatch(new RegExp(`^${held.id}\\s+held\\s+PENDING \\(concurrency\\)\\s+0\\s`, "m"));
    expect(ls.stdout).toMatch(new RegExp(`^${first.id}\\s+held\\s+RUNNING\\s`, "m"));

    await writeFile(join(dir, gate), "");
    const done = await waitForRun(() => stack.client.getRun(held.id), (r) => r.state === "COMPLETED", "the held run to start and complete once the first finished");
    expect(done.waitingFor).toBeNull();
    expect(Date.parse(done.startedAt!)).toBeGreaterThanOrEqual(Date.parse((await stack.client.getRun(first.id)).finishedAt!));
    expect((await offload(["runs", "get", held.id])).stdout).not.toContain("Waiting for:");
  });

  it("a run held by a rate limit: delay --wait's live line says what it waits for and when the next slot comes; runs ls marks it", async () => {
    const first = await stack.client.createRun({ task: "paced", parameters: { tenant: "initech" }, rateLimitKey: "initech" });
    await waitForRun(() => stack.client.getRun(first.id), (r) => r.state === "COMPLETED", "the tenant's first run to complete");
    const waiting = start(["delay", "paced", "--params", '{"tenant":"initech"}', "--rate-limit-key", "initech", "--wait"]);
    await waiting.waitForOutput(/paced \S+ PENDING, waiting for rate limit 1 per 3600 s of key "initech" \(1 started, next slot \d\d:\d\d:\d\d\)/);
    const [held] = (await stack.client.listRuns({ task: "paced", state: "PENDING" })).runs;
    expect((await offload(["runs", "ls", "--task", "paced", "--limit", "1"])).stdout).toMatch(new RegExp(`^${held!.id}\\s+paced\\s+PENDING \\(rate limit\\)\\s`, "m"));
    // An hour is too long to wait: cancelled while it waits, it ends the --wait with exit 1.
    await stack.client.cancelRun(held!.id);
    expect(await waiting.exited).toBe(1);
    expect(waiting.output()).toContain(`Run ${held!.id} CANCELLED`);
  });

  it("delay: parameters the registered schema refuses exit 2 naming the field; a task no worker registered is recorded with a warning on stderr", async () => {
    const bad = await offload(["delay", "held", "--params", JSON.stringify({ dir, gate: "never", tenant: 5 })]);
    expect(bad.code).toBe(2);
    expectOneLineError(bad, "OFFLOAD_INVALID_PARAMETERS");
    expect(bad.stderr).toMatch(/^ {2}parameters\.tenant: /m);
    expect((await stack.client.listRuns({ task: "held", state: "PENDING" })).runs).toEqual([]);

    const unregistered = await offload(["delay", "nobody-serves-this", "--params", '{"x":1}', "--json"]);
    expect(unregistered.code).toBe(0);
    expect(unregistered.stderr).toBe('offload: warning: no worker has registered task "nobody-serves-this" yet: its parameters were not checked and its limits are not known\n');
    const run = JSON.parse(unregistered.stdout) as Run & { warnings: string[] };
    expect(run.warnings).toHaveLength(1);
    await stack.client.cancelRun(run.id); // nothing will ever serve it
  });

  it("schedules set, ls, get and rm: tables, --json, the run a schedule started, exit 2 for a cron the API cannot read and 3 for an unknown key", async () => {
    const set = await offload(["schedules", "set", "cli-nightly", "--task", "add", "--cron", "0 3 * * *", "--tz", "Europe/Paris", "--params", '{"a":1,"b":2}', "--policy", "Forbid"]);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^Schedule cli-nightly runs add at "0 3 \* \* \*" \(Europe\/Paris\); next run \S+ \(in \d+(h\d\dm|m\d\ds|s)\)\.$/m);
    const get = await offload(["schedules", "get", "cli-nightly"]);
    expect(get.stdout).toMatch(/^Time zone:\s+Europe\/Paris$/m);
    expect(get.stdout).toMatch(/^Concurrency policy:\s+Forbid$/m);
    expect(get.stdout).toMatch(/^Parameters:\s+\{"a":1,"b":2\}$/m);
    expect(get.stdout).toMatch(/^Last run:\s+-$/m);
    const stored = await stack.client.getSchedule("cli-nightly");
    expect(stored).toMatchObject({ key: "cli-nightly", task: "add", schedule: "0 3 * * *", timeZone: "Europe/Paris", concurrencyPolicy: "Forbid", suspend: false, lastRunId: null });
    // 03:00 in Paris is 01:00 or 02:00 UTC.
    expect(new Date(stored.nextScheduleTime!).getUTCHours()).toBeGreaterThanOrEqual(1);

    // Every 2 seconds: the table shows the run it started.
    await stack.client.putSchedule("cli-fast", { task: "add", schedule: "*/2 * * * * *", parameters: { a: 40, b: 2 } });
    const fired = await waitFor("the schedule to start a run", async () => (await stack.client.getSchedule("cli-fast")).lastRunId ?? undefined, 15_000, 200);
    expect(await waitForRun(() => stack.client.getRun(fired), (r) => r.state === "COMPLETED", "the scheduled run to complete")).toMatchObject({ task: "add", result: { sum: 42 } });
    const ls = await offload(["schedules", "ls"]);
    expect(ls.code).toBe(0);
    const [header, ...rows] = ls.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^KEY\s+TASK\s+SCHEDULE\s+TIME ZONE\s+POLICY\s+SUSPENDED\s+LAST\s+NEXT\s+LAST RUN$/);
    expect(rows.find((r) => r.startsWith("cli-nightly "))).toMatch(/^cli-nightly\s+add\s+0 3 \* \* \*\s+Europe\/Paris\s+Forbid\s+no\s+-\s+in \S+\s+-$/);
    expect(rows.find((r) => r.startsWith("cli-fast "))).toMatch(/^cli-fast\s+add\s+\*\/2 \* \* \* \* \*\s+UTC\s+Allow\s+no\s+(just now|\d+s ago)\s+(just now|in \d+s|\d+s ago)\s+[0-9a-f-]{36}$/);
    const listed = JSON.parse((await offload(["schedules", "ls", "--json"])).stdout) as { schedules: Schedule[] };
    expect(listed.schedules.map((s) => s.key)).toEqual(expect.arrayContaining(["cli-nightly", "cli-fast"]));

    const badCron = await offload(["schedules", "set", "cli-bad", "--task", "add", "--cron", "every tuesday"]);
    expect(badCron.code).toBe(2);
    expectOneLineError(badCron, "OFFLOAD_INVALID_SCHEDULE");

    await stack.client.deleteSchedule("cli-fast");
    expect((await offload(["schedules", "rm", "cli-nightly"])).stdout).toBe("Schedule cli-nightly removed.\n");
    const gone = await offload(["schedules", "get", "cli-nightly"]);
    expect(gone.code).toBe(3);
    expectOneLineError(gone, "OFFLOAD_SCHEDULE_NOT_FOUND");
    expect(gone.stderr).toContain("(list schedules with: offload schedules ls)");
    expect((await offload(["schedules", "rm", "cli-nightly"])).code).toBe(3);
  });

  it("exit 4 without the API's token, 5 when the API cannot be reached, 2 for a malformed OFFLOAD_API_URL", async () => {
    const noToken = await offload(["runs", "ls"], { OFFLOAD_API_TOKEN: undefined });
    expect(noToken.code).toBe(4);
    expectOneLineError(noToken, "OFFLOAD_UNAUTHORIZED");
    const wrong = await offload(["tasks"], { OFFLOAD_API_TOKEN: "wrong" });
    expect(wrong.code).toBe(4);

    const down = await offload(["runs", "ls"], { OFFLOAD_API_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(5);
    expectOneLineError(down, "OFFLOAD_API_UNREACHABLE");
    const malformed = await offload(["runs", "ls"], { OFFLOAD_API_URL: "ftp://nowhere" });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("OFFLOAD_API_URL");
  });
});
