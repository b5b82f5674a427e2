/**
 * How `offload` shows things to people: aligned tables, relative times and
 * short durations. Scripts use `--json` instead, whose output never changes
 * shape with the terminal.
 */
import type { ConcurrencyLimit, RateLimit, RegisteredTask, Run, Schedule, WaitingFor } from "../protocol/index.js";

/** Rows under a header, each column as wide as its widest cell, two spaces apart; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - width(c))))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** `key: value` lines with the values aligned, for one object. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(...pairs.map(([k]) => width(k)));
  return pairs.map(([k, v]) => `${k}:${" ".repeat(w - width(k) + 1)}${v}`).join("\n") + "\n";
}

// Columns count code points, so a task name with non-ASCII letters still lines up.
const width = (s: string): number => [...s].length;

/** `now`-relative: "just now", "12s ago", "5m ago", "3h ago", "2d ago"; "in 5m" for a time ahead. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const ms = now - Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 2) return "just now";
  const text = duration(s * 1000);
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}

/** A length of time in its largest unit or two: "850ms", "12s", "4m05s", "3h12m", "2d4h". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** How long a run took, or has been running; "-" before it started. */
export function runDuration(run: Pick<Run, "startedAt" | "finishedAt">, now = Date.now()): string {
  if (!run.startedAt) return "-";
  const end = run.finishedAt ? Date.parse(run.finishedAt) : now;
  return duration(end - Date.parse(run.startedAt));
}

/** A run's progress as people read it: "40% resized 4 of 10", "4/10", or "" when it reported none. */
export function progressText(run: object): string {
  const p = (run as { progress?: { value?: number; message?: string; done?: number; total?: number } | null }).progress;
  if (!p || typeof p.value !== "number") return "";
  const parts = [`${Math.round(p.value * 100)}%`];
  if (p.done !== undefined && p.total !== undefined) parts.push(`${p.done}/${p.total}`);
  if (p.message) parts.push(p.message);
  return parts.join(" ");
}

/** A value as one line of JSON, cut to `max` characters (for a table cell). */
export function brief(value: unknown, max = 60): string {
  const text = value === undefined ? "-" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A time of day as a clock shows it here, "12:00:03" (24 h, local time). */
export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString("en-GB", { hour12: false });
}

/** A number of seconds as "1 s", "90 s", "1.5 s". */
const seconds = (n: number): string => `${n} s`;

/**
 * Why a held run waits, in words: `concurrency limit 2 of key "acme" (2
 * running)`, `rate limit 10 per 1 s of key "acme" (10 started, next slot
 * 12:00:03)`; "of the task" for a limit without a key.
 */
export function waitingText(w: WaitingFor): string {
  const of = w.key === null ? "of the task" : `of key ${JSON.stringify(w.key)}`;
  if (w.kind === "concurrency") return `concurrency limit ${w.limit} ${of} (${w.running} running)`;
  return `rate limit ${w.limit} per ${seconds(w.periodSeconds)} ${of} (${w.started} started, next slot ${clock(w.nextSlotAt)})`;
}

/** A run's state with why it waits, for a table cell: "PENDING (concurrency)", "PENDING (rate limit)", else the state. */
export function stateText(run: Pick<Run, "state" | "waitingFor">): string {
  if (!run.waitingFor) return run.state;
  return `${run.state} (${run.waitingFor.kind === "concurrency" ? "concurrency" : "rate limit"})`;
}

/** A concurrency limit in a table cell: "2/key" (per concurrency key), "2" (the whole task's). */
export const concurrencyCell = (c: ConcurrencyLimit | undefined): string => (c ? `${c.limit}${c.keyed ? "/key" : ""}` : "-");
/** A rate limit in a table cell: "100/60s/key", "100/60s". */
export const rateCell = (r: RateLimit | undefined): string => (r ? `${r.limit}/${r.periodSeconds}s${r.keyed ? "/key" : ""}` : "-");

/**
 * A task's registered limits in words: "at most 2 running per key; at most
 * 100 starts per 60 s per key", "no limits", or "not registered" when no
 * worker has told the run API about the task yet.
 */
export function limitsText(definition: RegisteredTask | undefined): string {
  if (!definition) return "not registered";
  const parts: string[] = [];
  const { concurrency: c, rateLimit: r } = definition;
  if (c) parts.push(`at most ${c.limit} running ${c.keyed ? "per key" : "at once"}`);
  if (r) parts.push(`at most ${r.limit} start${r.limit === 1 ? "" : "s"} per ${seconds(r.periodSeconds)}${r.keyed ? " per key" : ""}`);
  return parts.length ? parts.join("; ") : "no limits";
}

/** The table of `offload runs ls`. */
export function runsTable(runs: readonly Run[], now = Date.now()): string {
  if (runs.length === 0) return "No runs.\n";
  return table(
    ["ID", "TASK", "STATE", "ATTEMPTS", "CREATED", "DURATION", "PROGRESS"],
    runs.map((r) => [r.id, r.task, stateText(r), String(r.attempts), ago(r.createdAt, now), runDuration(r, now), progressText(r)]),
  );
}

/** The page of `offload runs get`. */
export function runDetails(run: Run, now = Date.now()): string {
  const pairs: [string, string][] = [
    ["ID", run.id],
    ["Task", run.task],
    ["State", run.state + (run.cached ? " (from cache)" : "")],
    ["Attempts", String(run.attempts)],
    ["Created", `${run.createdAt} (${ago(run.createdAt, now)})`],
  ];
  if (run.scheduledAt !== run.createdAt) pairs.push(["Scheduled", `${run.scheduledAt} (${ago(run.scheduledAt, now)})`]);
  pairs.push(["Started", run.startedAt ? `${run.startedAt} (${ago(run.startedAt, now)})` : "-"]);
  pairs.push(["Finished", run.finishedAt ? `${run.finishedAt} (${ago(run.finishedAt, now)})` : "-"]);
  pairs.push(["Duration", runDuration(run, now)]);
  const progress = progressText(run);
  if (progress) pairs.push(["Progress", progress]);
  if (run.workerId) pairs.push(["Worker", run.workerId]);
  const ns = (run as { namespace?: unknown }).namespace;
  if (typeof ns === "string") pairs.push(["Namespace", ns]);
  if (run.idempotencyKey) pairs.push(["Idempotency key", run.idempotencyKey]);
  pairs.push(["Priority", String(run.priority)]);
  if (run.concurrencyKey !== null) pairs.push(["Concurrency key", JSON.stringify(run.concurrencyKey)]);
  if (run.rateLimitKey !== null) pairs.push(["Rate-limit key", JSON.stringify(run.rateLimitKey)]);
  // Only a PENDING run held by a limit has one: the line says why it has not started.
  if (run.waitingFor) pairs.push(["Waiting for", waitingText(run.waitingFor)]);
  pairs.push(["Parameters", JSON.stringify(run.parameters)]);
  if (run.state === "COMPLETED") pairs.push(["Result", run.resultRef ? `(stored: ${run.resultRef})` : JSON.stringify(run.result)]);
  if (run.error) pairs.push(["Error", `${run.error.type}: ${run.error.message}`]);
  // Many lines, so under the aligned fields rather than in them; indented so the page still reads as one run.
  const stack = run.error?.stack ? `Stack:\n${indent(run.error.stack, "  ")}\n` : "";
  return fields(pairs) + stack;
}

/** The table of `offload schedules ls`; a NAMESPACE column when they span more than one. */
export function schedulesTable(schedules: readonly Schedule[], now = Date.now()): string {
  if (schedules.length === 0) return "No schedules.\n";
  const spread = new Set(schedules.map((s) => s.namespace)).size > 1;
  return table(
    ["KEY", ...(spread ? ["NAMESPACE"] : []), "TASK", "SCHEDULE", "TIME ZONE", "POLICY", "SUSPENDED", "LAST", "NEXT", "LAST RUN"],
    schedules.map((s) => [
      s.key,
      ...(spread ? [s.namespace] : []),
      s.task,
      s.schedule,
      s.timeZone,
      s.concurrencyPolicy,
      s.suspend ? "yes" : "no",
      ago(s.lastScheduleTime, now),
      s.suspend ? "-" : ago(s.nextScheduleTime, now),
      s.lastRunId ?? "-",
    ]),
  );
}

/** The page of `offload schedules get`. */
export function scheduleDetails(s: Schedule, now = Date.now()): string {
  const at = (iso: string | null): string => (iso ? `${iso} (${ago(iso, now)})` : "-");
  return fields([
    ["Key", s.key],
    ["Namespace", s.namespace],
    ["Task", s.task],
    ["Schedule", s.schedule],
    ["Time zone", s.timeZone],
    ["Parameters", JSON.stringify(s.parameters ?? {})],
    ["Concurrency policy", s.concurrencyPolicy],
    ["Suspended", s.suspend ? "yes" : "no"],
    ["Starting deadline", s.startingDeadlineSeconds === null ? "none (a missed time always fires, once)" : seconds(s.startingDeadlineSeconds)],
    ["Priority", s.priority === null ? "the default" : String(s.priority)],
    ["Last scheduled", at(s.lastScheduleTime)],
    ["Last run", s.lastRunId ?? "-"],
    ["Next", s.suspend ? "- (suspended)" : at(s.nextScheduleTime)],
    ["Created", at(s.createdAt)],
    ["Updated", at(s.updatedAt)],
  ]);
}

const indent = (text: string, by: string): string =>
  text
    .split("\n")
    .map((line) => (line ? by + line : line))
    .join("\n");
