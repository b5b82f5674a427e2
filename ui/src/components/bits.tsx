/** Small pieces every page uses. */
import type { ComponentChildren } from "preact";
import { ago, progressText } from "../../../sdk/src/cli/format.js";
import type { Run } from "../api.js";

/** A run's state, coloured by what it means (the text says it too, for those who cannot tell the colours apart). */
export function StateBadge({ state }: { state: string }) {
  return <span class={`state state-${state.toLowerCase()}`}>{state}</span>;
}

/** A time as "5m ago", with the exact time on hover and for screen readers. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span>-</span>;
  return (
    <time dateTime={at} title={at}>
      {ago(at)}
    </time>
  );
}

/** A run's progress: a bar and its words, or nothing before the task reports any. */
export function Progress({ run }: { run: Run }) {
  const p = run.progress;
  if (!p) return null;
  return (
    <span class="progress">
      <progress max={1} value={p.value} aria-label={`progress of run ${run.id}`} />
      <span>{progressText(run)}</span>
    </span>
  );
}

/** What went wrong loading a page, with the API's code. */
export function Problem({ problem }: { problem: Error | undefined }) {
  if (!problem) return null;
  const code = (problem as { code?: string }).code;
  return (
    <p class="problem" role="alert">
      {code ? <strong>{code}: </strong> : null}
      {problem.message}
    </p>
  );
}

/** A labelled section of a page. */
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section aria-labelledby={id ? `${id}-title` : undefined} class="card">
      <h2 id={id ? `${id}-title` : undefined}>{title}</h2>
      {children}
    </section>
  );
}
