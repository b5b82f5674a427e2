/** Plain-text tables for the terminal. */
export type Cell = string | number | null | undefined;

export function formatTable(title: string, header: readonly string[], rows: readonly Cell[][]): string {
  const text = rows.map((r) => r.map(show));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [`\n${title}`, line(header), rule, ...text.map(line)].join("\n");
}

function show(c: Cell): string {
  if (c === null || c === undefined) return "-";
  if (typeof c === "number") {
    if (Number.isNaN(c)) return "-";
    const size = Math.abs(c);
    return Number.isInteger(c) ? String(c) : c.toFixed(size >= 100 ? 0 : size >= 10 ? 1 : 2);
  }
  return c;
}
