/** The worker processes heard from lately: what they serve and how busy they are. */
import { api } from "../api.js";
import { Problem, When } from "../components/bits.js";
import { useLoad } from "../hooks.js";
import { href } from "../route.js";

export function WorkersPage() {
  const overview = useLoad(() => api.overview(3600, 1), [], 3000);
  const workers = overview.value?.workers;
  return (
    <>
      <h1>Workers</h1>
      <Problem problem={overview.problem} />
      {workers && workers.length === 0 && <p>No worker has sent a heartbeat in the last 15 seconds.</p>}
      {workers && workers.length > 0 && (
        <div class="table-wrap card">
          <table class="workers">
            <caption class="visually-hidden">Workers</caption>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Tasks</th>
                <th scope="col" class="num">Runs in flight</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {workers.map((w) => (
                <tr key={w.workerId} data-worker={w.workerId}>
                  <th scope="row">
                    <code>{w.workerId}</code>
                  </th>
                  <td>
                    {w.tasks.map((t, i) => (
                      <>
                        {i > 0 && ", "}
                        <a href={href.runs({ task: t })}>{t}</a>
                      </>
                    ))}
                  </td>
                  <td class="num">
                    {w.inFlight} / {w.concurrency}
                  </td>
                  <td>
                    <When at={w.lastSeenAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
