/** The tasks at a glance: load, registered limits, the last hour's outcomes, throughput, workers. */
import { useEffect } from "preact/hooks";
import { limitsText } from "../../../sdk/src/cli/format.js";
import { api, streamEvents, type TaskInfo } from "../api.js";
import { ThroughputChart } from "../components/chart.js";
import { Problem, Section } from "../components/bits.js";
import { useLoad } from "../hooks.js";
import { href } from "../route.js";

export function OverviewPage() {
  const overview = useLoad(() => api.overview(3600, 30), [], 5000);
  // The definitions workers registered (limits) come with the task list, not the overview's figures.
  const tasks = useLoad(() => api.tasks(), [], 5000);
  const definitions = new Map<string, TaskInfo["definition"]>((tasks.value ?? []).map((t) => [t.name, t.definition]));
  // A run finishing anywhere in this API process refreshes the figures at once.
  useEffect(() => {
    const stop = new AbortController();
    let pending: ReturnType<typeof setTimeout> | undefined;
    void streamEvents(
      "/v1/events",
      () => {
        pending ??= setTimeout(() => {
          pending = undefined;
          overview.reload();
        }, 300);
      },
      stop.signal,
    ).catch(() => undefined);
    return () => {
      stop.abort();
      clearTimeout(pending);
    };
  }, []);
  const o = overview.value;
  return (
    <>
      <h1>Overview</h1>
      <Problem problem={overview.problem} />
      {!o && overview.loading && <p aria-live="polite">Loading…</p>}
      {o && (
        <>
          <Section title="Tasks" id="tasks">
            {o.tasks.length === 0 ? (
              <p>No tasks yet: no run was delayed and no worker is serving.</p>
            ) : (
              <div class="table-wrap">
                <table class="tasks">
                  <caption class="visually-hidden">Tasks, with the last hour's outcomes</caption>
                  <thead>
                    <tr>
                      <th scope="col">Task</th>
                      <th scope="col" class="num">Backlog</th>
                      <th scope="col" class="num">Running</th>
                      <th scope="col" class="num">Workers</th>
                      <th scope="col">Limits</th>
                      <th scope="col" class="num">Completed (1 h)</th>
                      <th scope="col" class="num">Failed (1 h)</th>
                    </tr>
                  </thead>
                  <tbody>
                    {o.tasks.map((t) => (
                      <tr key={t.name} data-task={t.name}>
                        <th scope="row">
                          <a href={href.runs({ task: t.name })}>{t.name}</a>
                        </th>
                        <td class="num" data-col="backlog">{t.backlog}</td>
                        <td class="num" data-col="running">{t.running}</td>
                        <td class="num" data-col="workers">
                          {t.workers}
                          {t.slots ? <span class="muted"> ({t.slots} slots)</span> : null}
                        </td>
                        <td data-col="limits">{tasks.value ? <Limits definition={definitions.get(t.name)} /> : "…"}</td>
                        <td class="num" data-col="completed">
                          <a href={href.runs({ task: t.name, state: "COMPLETED", since: "1h" })}>{t.completed}</a>
                        </td>
                        <td class="num" data-col="failed">
                          <a href={href.runs({ task: t.name, state: "FAILED", since: "1h" })} class={t.failed ? "bad" : undefined}>
                            {t.failed}
                          </a>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          <Section title="Throughput, last hour" id="throughput">
            <ThroughputChart series={o.throughput} bucketSeconds={o.bucketSeconds} />
          </Section>
          <Section title="Workers" id="workers-summary">
            <p>
              {o.workers.length} worker{o.workers.length === 1 ? "" : "s"}, {o.workers.reduce((n, w) => n + w.inFlight, 0)} run(s) in flight.{" "}
              <a href={href.workers()}>See the workers</a>
            </p>
          </Section>
        </>
      )}
    </>
  );
}

/** A task's registered limits in words, or "not registered" (its parameters are not checked and its limits not known). */
function Limits({ definition }: { definition: TaskInfo["definition"] }) {
  if (!definition) {
    return (
      <span class="unregistered" title="No worker has registered this task yet: its parameters are not checked and its limits are not known.">
        not registered
      </span>
    );
  }
  return <span>{limitsText(definition)}</span>;
}
