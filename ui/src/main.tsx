/** The Offload dashboard: the page frame, the token prompt, and the pages by route. */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { token } from "./api.js";
import { TokenPrompt } from "./components/token-prompt.js";
import { OverviewPage } from "./pages/overview.js";
import { RunPage } from "./pages/run.js";
import { RunsPage } from "./pages/runs.js";
import { SchedulesPage } from "./pages/schedules.js";
import { WorkersPage } from "./pages/workers.js";
import { href, useRoute } from "./route.js";
import "./styles.css";

function App() {
  const route = useRoute();
  const [needToken, setNeedToken] = useState(false);
  // Bumped after a token is saved, so every page reloads with it.
  const [generation, setGeneration] = useState(0);
  useEffect(() => token.onNeeded(() => setNeedToken(true)), []);
  if (needToken) {
    return (
      <TokenPrompt
        wrong={token.get() !== null}
        onSaved={() => {
          setNeedToken(false);
          setGeneration((g) => g + 1);
        }}
      />
    );
  }
  const current = route.page === "run" ? "runs" : route.page;
  const link = (page: typeof current, to: string, label: string) => (
    <a href={to} aria-current={current === page ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Offload</span>
        <nav aria-label="Dashboard">
          {link("overview", href.overview(), "Overview")}
          {link("runs", href.runs(), "Runs")}
          {link("workers", href.workers(), "Workers")}
          {link("schedules", href.schedules(), "Schedules")}
        </nav>
        {token.get() && (
          <button
            type="button"
            class="link"
            onClick={() => {
              token.clear();
              setNeedToken(true);
            }}
          >
            Forget token
          </button>
        )}
      </header>
      <main id="main" key={generation}>
        {route.page === "overview" && <OverviewPage />}
        {route.page === "runs" && <RunsPage query={route.query} />}
        {route.page === "run" && <RunPage id={route.id} key={route.id} />}
        {route.page === "workers" && <WorkersPage />}
        {route.page === "schedules" && <SchedulesPage />}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
