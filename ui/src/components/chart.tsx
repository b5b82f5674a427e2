/**
 * Throughput over time as stacked bars in plain SVG: completed below, failed
 * above. A chart library would weigh more than this whole dashboard. The
 * numbers are also in a table for screen readers (visually hidden).
 */
import type { Overview } from "../api.js";

const W = 600;
const H = 140;
const PAD = { top: 8, right: 8, bottom: 20, left: 32 };

export function ThroughputChart({ series, bucketSeconds }: { series: Overview["throughput"]; bucketSeconds: number }) {
  const max = Math.max(1, ...series.map((b) => b.completed + b.failed));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(1, series.length);
  const y = (n: number): number => (n / max) * plotH;
  const total = series.reduce((n, b) => n + b.completed + b.failed, 0);
  const label = (iso: string): string => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Runs finished per ${bucketSeconds} seconds: ${total} in the window, at most ${max} in one slice`}>
        <line x1={PAD.left} x2={W - PAD.right} y1={H - PAD.bottom} y2={H - PAD.bottom} class="axis" />
        <text x={PAD.left - 4} y={PAD.top + 8} class="tick" text-anchor="end">
          {max}
        </text>
        <text x={PAD.left - 4} y={H - PAD.bottom} class="tick" text-anchor="end">
          0
        </text>
        {series.map((b, i) => {
          const x = PAD.left + i * bw + 1;
          const hc = y(b.completed);
          const hf = y(b.failed);
          return (
            <g key={b.at}>
              <title>{`${label(b.at)}: ${b.completed} completed, ${b.failed} failed`}</title>
              {b.completed > 0 && <rect x={x} width={Math.max(1, bw - 2)} y={H - PAD.bottom - hc} height={hc} class="bar-completed" />}
              {b.failed > 0 && <rect x={x} width={Math.max(1, bw - 2)} y={H - PAD.bottom - hc - hf} height={hf} class="bar-failed" />}
            </g>
          );
        })}
        {series.length > 0 && (
          <>
            <text x={PAD.left} y={H - 4} class="tick">
              {label(series[0]!.at)}
            </text>
            <text x={W - PAD.right} y={H - 4} class="tick" text-anchor="end">
              now
            </text>
          </>
        )}
      </svg>
      <figcaption>
        <span class="key key-completed" /> completed <span class="key key-failed" /> failed, per {bucketSeconds >= 60 ? `${Math.round(bucketSeconds / 60)} min` : `${bucketSeconds} s`}
      </figcaption>
      <table class="visually-hidden">
        <caption>Runs finished per slice of time</caption>
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">Completed</th>
            <th scope="col">Failed</th>
          </tr>
        </thead>
        <tbody>
          {series.map((b) => (
            <tr key={b.at}>
              <td>{label(b.at)}</td>
              <td>{b.completed}</td>
              <td>{b.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
