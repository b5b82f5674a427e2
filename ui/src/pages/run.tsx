/**
 * One run: what it was given and gave back, its error, its attempts and the
 * timeline of its events, its log as it comes, its progress, and Cancel /
 * Retry buttons that say what they did.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { isTerminal } from "../../../sdk/src/protocol/states.js";
import { runDuration, waitingText } from "../../../sdk/src/cli/format.js";
import { api, ApiProblem, streamEvents, type Run, type RunLogLine } from "../api.js";
import { Problem, Progress, Section, StateBadge, When } from "../components/bits.js";
import { href } from "../route.js";

interface Moment {
  at: string;
  what: string;
}

/** A state reached, with the attempt it belongs to (a retried run fails, or runs, more than once). */
const reached = (state: string, attempts: number): string =>
  attempts > 0 && (state === "RUNNING" || isTerminal(state as Run["state"])) ? `${state} (attempt ${attempts})` : state;

/** What a held run waits for, as a moment of its timeline: the kind of limit and its key (not the counts, which change as it waits). */
const heldBy = (w: NonNullable<Run["waitingFor"]>): string =>
  `held by the ${w.kind === "concurrency" ? "concurrency" : "rate"} limit${w.key === null ? "" : ` of key ${JSON.stringify(w.key)}`}`;

/** The moments a run record shows by itself (before any event was seen live). */
function momentsOf(run: Run): Moment[] {
  const out: Moment[] = [{ at: run.createdAt, what: "created" }];
  if (run.scheduledAt !== run.createdAt) out.push({ at: run.scheduledAt, what: "due" });
  if (run.waitingFor) out.push({ at: run.updatedAt, what: heldBy(run.waitingFor) });
  if (run.startedAt) out.push({ at: run.startedAt, what: reached("RUNNING", run.attempts) });
  if (run.finishedAt) out.push({ at: run.finishedAt, what: reached(run.state, run.attempts) });
  return out;
}

/** `more` added to `moments` (a moment said twice kept once), in time order. */
function merge(moments: Moment[], more: Moment[]): Moment[] {
  const out = [...moments];
  for (const m of more) if (!out.some((o) => o.what === m.what)) out.push(m);
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

export function RunPage({ id }: { id: string }) {
  const [run, setRun] = useState<Run | undefined>();
  const [problem, setProblem] = useState<Error | undefined>();
  const [timeline, setTimeline] = useState<Moment[]>([]);
  const [logs, setLogs] = useState<{ lines: RunLogLine[]; truncated: boolean } | undefined>();
  const [said, setSaid] = useState<{ text: string; bad?: boolean } | undefined>();
  const [busy, setBusy] = useState(false);
  const lastKey = useRef("");
  // Whether the run was last seen held by a limit, so the stream's next record can say it was let go.
  const wasHeld = useRef(false);

  // The run's own stream: its state now, each change after, and its progress; reopened after a retry.
  const [streamGen, setStreamGen] = useState(0);
  useEffect(() => {
    const stop = new AbortController();
    setProblem(undefined);
    api.run(id).then((r) => {
      setRun(r);
      wasHeld.current ||= r.waitingFor !== null;
      setTimeline((t) => merge(t, momentsOf(r)));
    }, setProblem);
    void streamEvents(
      `/v1/runs/${encodeURIComponent(id)}/events`,
      (event, data) => {
        if (event === "state") {
          const r = data as Run;
          setRun(r);
          // The stream says when a held run starts waiting, when its reason changes, and when it is let go.
          if (r.waitingFor) setTimeline((t) => merge(t, [{ at: r.updatedAt, what: heldBy(r.waitingFor!) }]));
          else if (wasHeld.current && r.state === "PENDING") setTimeline((t) => merge(t, [{ at: r.updatedAt, what: "dispatched: its limit let it start" }]));
          wasHeld.current = r.waitingFor !== null;
          const key = `${r.state}|${r.attempts}`;
          if (key !== lastKey.current) {
            lastKey.current = key;
            const what = reached(r.state, r.attempts);
            // The record's own times where it has them (the state event's updatedAt may be a later write).
            setTimeline((t) => merge(t, [...momentsOf(r).filter((m) => m.what === what), { at: r.updatedAt, what }]));
          }
        } else if (event === "progress") {
          const p = data as { runId: string; progress: NonNullable<Run["progress"]> };
          setRun((r) => (r ? { ...r, progress: p.progress } : r));
        }
      },
      stop.signal,
    ).catch((err: unknown) => setProblem(err instanceof Error ? err : new Error(String(err))));
    return () => stop.abort();
  }, [id, streamGen]);

  // The log, re-read while the run goes, and once more after it ended (its last lines arrive just before the outcome).
  const finished = run ? isTerminal(run.state) : false;
  useEffect(() => {
    let cancelled = false;
    const read = (): void =>
      void api.logs(id).then(
        (l) => !cancelled && setLogs(l),
        () => undefined,
      );
    read();
    if (finished) return;
    const timer = setInterval(read, 1000);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [id, finished]);

  // While it runs, progress is re-read too: not every API stream carries progress events.
  // So is a run held by a limit: another replica's admission pass may dispatch it, or
  // refresh why it waits, and that change reaches this page's stream only from the replica that made it.
  const held = run?.waitingFor != null;
  useEffect(() => {
    if (run?.state !== "RUNNING" && !held) return;
    const timer = setInterval(() => void api.run(id).then((r) => setRun((cur) => (cur && isTerminal(cur.state) ? cur : r)), () => undefined), 1000);
    return () => clearInterval(timer);
  }, [id, run?.state, held]);

  const act = async (what: "cancel" | "retry"): Promise<void> => {
    setBusy(true);
    setSaid(undefined);
    try {
      const r = await api[what](id);
      setRun(r);
      if (what === "retry") {
        setSaid({ text: `Retried: the run is ${r.state} again and attempt ${r.attempts + 1} will start when a worker takes it.` });
        setTimeline((t) => merge(t, [{ at: r.updatedAt, what: `retried: attempt ${r.attempts + 1} next` }]));
        lastKey.current = "";
        setStreamGen((g) => g + 1);
      } else if (r.state === "CANCELLED") setSaid({ text: "Cancelled: the run is CANCELLED and will not run." });
      else setSaid({ text: `Asked its worker to stop the run (it was ${r.state}); it shows CANCELLED once the worker has stopped it.` });
    } catch (err) {
      const p = err instanceof ApiProblem ? `${err.code}: ${err.message}` : String(err);
      setSaid({ text: `Could not ${what} the run: ${p}`, bad: true });
    } finally {
      setBusy(false);
    }
  };

  if (!run) {
    return (
      <>
        <h1>Run {id}</h1>
        <Problem problem={problem} />
        {!problem && <p aria-live="polite">Loading…</p>}
      </>
    );
  }
  const error = run.error;
  return (
    <>
      <p class="crumbs">
        <a href={href.runs({ task: run.task })}>← Runs of {run.task}</a>
      </p>
      <h1>
        Run <code class="run-id">{run.id}</code>
      </h1>
      <div class="run-head card">
        <p>
          <StateBadge state={run.state} /> <span data-testid="run-task">{run.task}</span> · attempt {run.attempts} · {runDuration(run)}
          {run.cached && " · from cache"}
          {run.workerId && (
            <>
              {" "}
              · worker <code>{run.workerId}</code>
            </>
          )}
        </p>
        {run.waitingFor && (
          <p class="waiting" data-testid="waiting-for">
            <strong>Waiting for</strong> {waitingText(run.waitingFor)}{" "}
            <span class="muted">
              (as of <When at={run.updatedAt} />; it waits in the run API and holds no worker slot until the limit lets it start)
            </span>
          </p>
        )}
        {run.progress && (
          <p class="run-progress">
            <Progress run={run} /> <span class="muted">reported <When at={run.progress.updatedAt} /></span>
          </p>
        )}
        <div class="actions">
          <button type="button" onClick={() => void act("cancel")} disabled={busy || finished}>
            Cancel run
          </button>
          <button type="button" onClick={() => void act("retry")} disabled={busy || run.state !== "FAILED"}>
            Retry run
          </button>
        </div>
        <p role="status" aria-live="polite" class={said?.bad ? "problem" : "said"}>
          {said?.text ?? ""}
        </p>
        <Problem problem={problem} />
      </div>
      <div class="grid">
        <Section title="Parameters" id="parameters">
          <pre>{JSON.stringify(run.parameters, null, 2)}</pre>
        </Section>
        {run.state === "COMPLETED" && (
          <Section title="Result" id="result">
            <pre>{run.resultRef ? `Stored in the results store as ${run.resultRef}` : JSON.stringify(run.result, null, 2)}</pre>
          </Section>
        )}
        {error && (
          <Section title="Error" id="error">
            <p class="problem">
              <strong>{error.type}</strong>: {error.message}
            </p>
            {error.stack && <pre class="stack">{error.stack}</pre>}
          </Section>
        )}
        <Section title="Timeline" id="timeline">
          <ol class="timeline">
            {timeline.map((m) => (
              <li key={`${m.at}-${m.what}`}>
                <When at={m.at} /> {m.what}
              </li>
            ))}
          </ol>
          <dl class="facts">
            <dt>Created</dt>
            <dd>{run.createdAt}</dd>
            <dt>Started</dt>
            <dd>{run.startedAt ?? "-"}</dd>
            <dt>Finished</dt>
            <dd>{run.finishedAt ?? "-"}</dd>
            {run.idempotencyKey && (
              <>
                <dt>Idempotency key</dt>
                <dd>{run.idempotencyKey}</dd>
              </>
            )}
            <dt>Namespace</dt>
            <dd>{run.namespace}</dd>
            <dt>Priority</dt>
            <dd data-testid="run-priority">{run.priority}</dd>
            {run.concurrencyKey !== null && (
              <>
                <dt>Concurrency key</dt>
                <dd data-testid="run-concurrency-key">{run.concurrencyKey}</dd>
              </>
            )}
            {run.rateLimitKey !== null && (
              <>
                <dt>Rate-limit key</dt>
                <dd data-testid="run-rate-limit-key">{run.rateLimitKey}</dd>
              </>
            )}
          </dl>
        </Section>
      </div>
      <Section title="Logs" id="logs">
        {logs?.truncated && <p class="muted">Older lines were dropped.</p>}
        {logs && logs.lines.length === 0 && <p class="muted">Nothing logged{finished ? "" : " yet"}.</p>}
        {logs && logs.lines.length > 0 && (
          <ol class="logs" aria-live="polite">
            {logs.lines.map((l, i) => (
              <li key={i} class={`log-${l.level}`}>
                <time dateTime={l.at}>{l.at.slice(11, 23)}</time> <span class="muted">#{l.attempt}</span> <span class="level">{l.level}</span> {l.msg}
                {l.data && Object.keys(l.data).length > 0 && <span class="muted"> {JSON.stringify(l.data)}</span>}
              </li>
            ))}
          </ol>
        )}
      </Section>
    </>
  );
}
