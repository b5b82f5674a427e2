/**
 * The cron schedules the run API keeps (made with `offload schedules set`,
 * `task.schedule()` in code, `PUT /v1/schedules/:key`, or a TaskSchedule
 * resource): what each starts and when, and the run it started last.
 */
import { api, type Schedule } from "../api.js";
import { Problem, When } from "../components/bits.js";
import { useLoad } from "../hooks.js";
import { href } from "../route.js";

export function SchedulesPage() {
  // Re-read every few seconds: the times move as schedules fire, on whichever API replica.
  const schedules = useLoad(() => api.schedules(), [], 5000);
  const list = schedules.value;
  // A namespace column only when the schedules span more than one (as `offload schedules ls`).
  const spread = new Set((list ?? []).map((s) => s.namespace)).size > 1;
  return (
    <>
      <h1>Schedules</h1>
      <Problem problem={schedules.problem} />
      {!list && schedules.loading && <p aria-live="polite">Loading…</p>}
      {list && list.length === 0 && (
        <p>
          No schedules. Make one with <code>offload schedules set</code>, <code>task.schedule()</code> in code, or a TaskSchedule resource.
        </p>
      )}
      {list && list.length > 0 && (
        <div class="table-wrap card">
          <table class="schedules">
            <caption class="visually-hidden">Schedules</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                {spread && <th scope="col">Namespace</th>}
                <th scope="col">Task</th>
                <th scope="col">Schedule</th>
                <th scope="col">Time zone</th>
                <th scope="col">Policy</th>
                <th scope="col">Suspended</th>
                <th scope="col">Last</th>
                <th scope="col">Next</th>
                <th scope="col">Last run</th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <ScheduleRow key={`${s.namespace}/${s.key}`} s={s} spread={spread} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function ScheduleRow({ s, spread }: { s: Schedule; spread: boolean }) {
  return (
    <tr data-schedule={s.key} data-suspended={String(s.suspend)}>
      <th scope="row">
        <code>{s.key}</code>
      </th>
      {spread && <td>{s.namespace}</td>}
      <td>
        <a href={href.runs({ task: s.task })}>{s.task}</a>
      </td>
      <td data-col="schedule">
        <code>{s.schedule}</code>
      </td>
      <td>{s.timeZone}</td>
      <td>{s.concurrencyPolicy}</td>
      <td data-col="suspended">{s.suspend ? <span class="held">suspended</span> : "no"}</td>
      <td data-col="last">
        <When at={s.lastScheduleTime} />
      </td>
      <td data-col="next">{s.suspend ? <span>-</span> : <When at={s.nextScheduleTime} />}</td>
      <td data-col="last-run">
        {s.lastRunId ? (
          <a href={href.run(s.lastRunId)}>
            <code>{s.lastRunId.slice(0, 8)}</code>
            <span class="visually-hidden">{s.lastRunId.slice(8)}</span>
          </a>
        ) : (
          "-"
        )}
      </td>
    </tr>
  );
}
