/**
 * The runs, newest first: filtered by task, state and age, a page at a time,
 * kept up to date by the API's event stream (and re-read every few seconds
 * for what another API replica recorded).
 */
import { useEffect, useState } from "preact/hooks";
import { RUN_STATES } from "../../../sdk/src/protocol/states.js";
import { runDuration, waitingText } from "../../../sdk/src/cli/format.js";
import { api, streamEvents, type Run } from "../api.js";
import { Problem, Progress, StateBadge, When } from "../components/bits.js";
import { useLoad } from "../hooks.js";
import { href } from "../route.js";

const PAGE = 25;
/** The "created within" choices, in seconds (absent: any age). */
export const SINCE: Record<string, { label: string; seconds: number }> = {
  "15m": { label: "last 15 minutes", seconds: 15 * 60 },
  "1h": { label: "last hour", seconds: 3600 },
  "24h": { label: "last 24 hours", seconds: 24 * 3600 },
  "7d": { label: "last 7 days", seconds: 7 * 24 * 3600 },
};

export function RunsPage({ query }: { query: URLSearchParams }) {
  const task = query.get("task") ?? undefined;
  const state = query.get("state") ?? undefined;
  const since = query.get("since") ?? undefined;
  const sinceMs = since && SINCE[since] ? Date.now() - SINCE[since].seconds * 1000 : undefined;
  // The cursors of the pages before this one (the first page has none).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  useEffect(() => setCursors([undefined]), [task, state, since]);
  const cursor = cursors.at(-1);
  const page = useLoad(() => api.runs({ task, state }, PAGE, cursor), [task, state, cursor], 5000);
  const tasks = useLoad(() => api.tasks(), []);
  const [live, setLive] = useState<Map<string, Run>>(new Map());
  const [fresh, setFresh] = useState<Run[]>([]);
  useEffect(() => {
    setLive(new Map());
    setFresh([]);
  }, [page.value]);

  useEffect(() => {
    const stop = new AbortController();
    const qs = task ? `?task=${encodeURIComponent(task)}` : "";
    void streamEvents(
      `/v1/events${qs}`,
      (event, data) => {
        if (event !== "run") return;
        const run = data as Run;
        setLive((m) => new Map(m).set(run.id, run));
        // A new run matching the filters shows up at the top of the first page.
        if (cursor === undefined && (!state || run.state === state)) {
          setFresh((f) => (f.some((r) => r.id === run.id) ? f : [run, ...f].slice(0, PAGE)));
        }
      },
      stop.signal,
    ).catch(() => undefined);
    return () => stop.abort();
  }, [task, state, cursor]);

  const base = page.value?.runs ?? [];
  const known = new Set(base.map((r) => r.id));
  const rows = [...fresh.filter((r) => !known.has(r.id)), ...base]
    .map((r) => live.get(r.id) ?? r)
    .filter((r) => (!state || r.state === state || known.has(r.id)) && (sinceMs === undefined || Date.parse(r.createdAt) >= sinceMs))
    // Newest first, as the API pages them: a run that changed live (e.g. an old one retried) stays where its age puts it.
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id))
    .slice(0, PAGE);
  const lastOnPage = base.at(-1);
  const older = page.value?.nextCursor && !(sinceMs !== undefined && lastOnPage && Date.parse(lastOnPage.createdAt) < sinceMs) ? page.value.nextCursor : undefined;

  const go = (next: Record<string, string | undefined>): void => {
    location.hash = href.runs({ task, state, since, ...next });
  };
  return (
    <>
      <h1>Runs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter runs">
        <label>
          Task
          <select value={task ?? ""} onChange={(e) => go({ task: e.currentTarget.value || undefined })}>
            <option value="">any task</option>
            {(tasks.value ?? []).map((t) => (
              <option key={t.name} value={t.name}>
                {t.name}
              </option>
            ))}
            {task && !(tasks.value ?? []).some((t) => t.name === task) && <option value={task}>{task}</option>}
          </select>
        </label>
        <label>
          State
          <select value={state ?? ""} onChange={(e) => go({ state: e.currentTarget.value || undefined })}>
            <option value="">any state</option>
            {RUN_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Created
          <select value={since ?? ""} onChange={(e) => go({ since: e.currentTarget.value || undefined })}>
            <option value="">at any time</option>
            {Object.entries(SINCE).map(([k, v]) => (
              <option key={k} value={k}>
                {v.label}
              </option>
            ))}
          </select>
        </label>
      </form>
      <Problem problem={page.problem} />
      {page.value && rows.length === 0 && <p>No runs match.</p>}
      {rows.length > 0 && (
        <div class="table-wrap card">
          <table class="runs">
            <caption class="visually-hidden">Runs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Task</th>
                <th scope="col">State</th>
                <th scope="col" class="num">Attempts</th>
                <th scope="col">Created</th>
                <th scope="col">Duration</th>
                <th scope="col">Progress</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-run={r.id} data-state={r.state} data-waiting={r.waitingFor?.kind}>
                  <th scope="row">
                    <a href={href.run(r.id)}>
                      <code>{r.id.slice(0, 8)}</code>
                      <span class="visually-hidden">{r.id.slice(8)}</span>
                    </a>
                  </th>
                  <td>{r.task}</td>
                  <td>
                    <StateBadge state={r.state} />
                    {r.waitingFor && (
                      <span class="held" title={`Waiting for ${waitingText(r.waitingFor)}`}>
                        {" "}
                        waiting: {r.waitingFor.kind === "concurrency" ? "concurrency" : "rate limit"}
                      </span>
                    )}
                  </td>
                  <td class="num">{r.attempts}</td>
                  <td>
                    <When at={r.createdAt} />
                  </td>
                  <td>{runDuration(r)}</td>
                  <td>
                    <Progress run={r} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Pages of runs">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Newer
        </button>
        <span>Page {cursors.length}</span>
        <button type="button" disabled={!older} onClick={() => older && setCursors((c) => [...c, older])}>
          Older →
        </button>
      </nav>
    </>
  );
}
