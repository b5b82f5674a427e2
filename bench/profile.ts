/**
 * Summaries of V8 CPU profiles (the `.cpuprofile` files `node --cpu-prof`
 * writes): which functions and which packages the run API spends its time in,
 * as two small tables a terminal can show and `latest.json` can keep.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { round } from "./stats.js";
import { formatTable } from "./table.js";

/** The parts of a V8 call frame the summary reads. */
export interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based, -1 when V8 has none (natives, pseudo-nodes). */
  lineNumber: number;
  columnNumber?: number;
}

/** One row of the functions table: self time of one function (all its nodes in the call tree merged). */
export interface ProfileFunction {
  /** The function's name, `(anonymous)`, or a V8 pseudo-node such as `(garbage collector)`. */
  name: string;
  /** `path:line` (1-based line), shortened as {@link classifyFrame} describes; empty for natives and pseudo-nodes. */
  location: string;
  selfMs: number;
  /** Share of busy time (sampled minus idle), 0..100. */
  percent: number;
}

/** One row of the areas table: self time of one package, Node subsystem or workspace folder. */
export interface ProfileArea {
  area: string;
  selfMs: number;
  /** Share of busy time, 0..100; null for `(idle)`, which is not busy time. */
  percent: number | null;
}

/**
 * Self time of a profile, per function and per area. Every percent is of
 * `busyMs` (sampled time minus idle time), because an API waiting for requests
 * is idle, and shares of wall time would shrink as the load gets lighter.
 */
export interface ProfileSummary {
  file: string;
  /** Profile wall time: endTime - startTime (within the window, when one was given). */
  totalMs: number;
  /** Time attributed to samples (totalMs minus the gap before the first sample). */
  sampledMs: number;
  idleMs: number;
  busyMs: number;
  /** Samples taken within the window. */
  samples: number;
  /** Top functions by self time, `(idle)` left out (it is `idleMs`). */
  functions: ProfileFunction[];
  /** Every area with self time, `(idle)` included, descending. */
  areas: ProfileArea[];
}

/** Where a call frame's time goes: the names the tables show. */
export interface FrameClass {
  name: string;
  location: string;
  area: string;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const PSEUDO_NODES = new Set(["(garbage collector)", "(program)", "(idle)", "(root)"]);
const IDLE = "(idle)";

/**
 * A span of a profile, in the microseconds of its own clock. V8 stamps
 * profiles with the monotonic clock (CLOCK_MONOTONIC on Linux), the clock of
 * `process.hrtime`, so another process on the same host can say when its
 * workloads ran: {@link monotonicUs}.
 */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** Now, on the clock V8 stamps its profiles with, in microseconds. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Reads a `.cpuprofile` and sums self time per function and per area.
 *
 * `o.root` is the repository root: files under it (outside node_modules) are
 * shown relative to it and grouped by workspace folder as `<name>: <folder>`,
 * `<name>` being the root package.json's name. `o.top` is how many functions
 * to keep (default 15). `o.window`: only the time within it counts (the
 * workloads, not the start-up before them, which for a run API on PGlite is
 * most of its life).
 */
export async function summarizeCpuProfile(file: string, o: { top?: number; root?: string; window?: ProfileWindow } = {}): Promise<ProfileSummary> {
  const profile = parseProfile(JSON.parse(await readFile(file, "utf8")), file);
  const root = o.root === undefined ? undefined : resolve(o.root);
  const project = root === undefined ? undefined : await projectName(root);
  const window = { fromUs: Math.max(profile.startTime, o.window?.fromUs ?? -Infinity), toUs: Math.min(profile.endTime, o.window?.toUs ?? Infinity) };
  const { self: selfUs, samples } = selfTimePerNode(profile, window);

  const byFunction = new Map<string, { name: string; location: string; us: number }>();
  const byArea = new Map<string, number>();
  let sampledUs = 0;
  let idleUs = 0;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  for (const [id, us] of selfUs) {
    const frame = frames.get(id);
    if (frame === undefined) throw new Error(`${file}: a sample names node ${id}, which is not in the profile`);
    const c = classifyFrame(frame, { root, project });
    sampledUs += us;
    byArea.set(c.area, (byArea.get(c.area) ?? 0) + us);
    if (c.area === IDLE) {
      idleUs += us;
      continue;
    }
    // The same function shows up once per distinct call path; the table wants it once.
    const key = `${frame.functionName}\0${frame.url}\0${frame.lineNumber}`;
    const f = byFunction.get(key);
    if (f) f.us += us;
    else byFunction.set(key, { name: c.name, location: c.location, us });
  }

  const busyUs = sampledUs - idleUs;
  const share = (us: number): number => (busyUs > 0 ? round((100 * us) / busyUs) : 0);
  const ms = (us: number): number => round(us / 1000);
  const functions = [...byFunction.values()]
    .filter((f) => f.us > 0)
    .sort((a, b) => b.us - a.us || a.name.localeCompare(b.name))
    .slice(0, o.top ?? 15)
    .map((f) => ({ name: f.name, location: f.location, selfMs: ms(f.us), percent: share(f.us) }));
  const areas = [...byArea]
    .filter(([, us]) => us > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([area, us]) => ({ area, selfMs: ms(us), percent: area === IDLE ? null : share(us) }));
  return {
    file,
    totalMs: ms(Math.max(0, window.toUs - window.fromUs)),
    sampledMs: ms(sampledUs),
    idleMs: ms(idleUs),
    busyMs: ms(busyUs),
    samples,
    functions,
    areas,
  };
}

/**
 * Self time in microseconds per node id, within `window`. A sample is the
 * stack at its timestamp; like Chrome DevTools, each sample owns the time
 * until the next one (the last until endTime), and the gap before the first
 * sample is nobody's. A sample's time that falls partly outside the window
 * counts for the part inside.
 */
function selfTimePerNode(p: CpuProfile, window: ProfileWindow): { self: Map<number, number>; samples: number } {
  const n = Math.min(p.samples.length, p.timeDeltas.length);
  const at: { t: number; id: number }[] = [];
  let t = p.startTime;
  for (let i = 0; i < n; i++) {
    t += p.timeDeltas[i] ?? 0;
    at.push({ t, id: p.samples[i] ?? -1 });
  }
  // V8 may record samples slightly out of order (negative deltas); the stable sort keeps equal times in file order.
  at.sort((a, b) => a.t - b.t);
  const self = new Map<number, number>();
  let samples = 0;
  for (let i = 0; i < at.length; i++) {
    const cur = at[i];
    if (cur === undefined) continue;
    const next = at[i + 1]?.t ?? Math.max(p.endTime, cur.t);
    const inside = Math.max(0, Math.min(next, window.toUs) - Math.max(cur.t, window.fromUs));
    self.set(cur.id, (self.get(cur.id) ?? 0) + inside);
    if (cur.t >= window.fromUs && cur.t <= window.toUs) samples++;
  }
  return { self, samples };
}

/**
 * The function name, short location and area of a call frame.
 *
 * Locations: under `root` (outside node_modules) relative to it; in
 * node_modules `pkg › path/in/pkg:line` (`@scope/pkg` for scoped ones, the
 * innermost node_modules for nested installs); `node:` modules and other URLs
 * as they are; anything else as an absolute path. Lines are 1-based, as editors
 * show them (V8's are 0-based).
 *
 * Areas: the npm package; `node:internal/<first folder>` for Node internals
 * (`node:internal/deps/<dep>` for the libraries Node bundles, since undici's
 * fetch and the rest are different things); `node:<module>` for public
 * builtins; `wasm` for WebAssembly (PGlite's PostgreSQL in a run API on
 * PGlite); `<project>: <workspace folder>` for the repository's own code
 * (`project` defaults to root's folder name); the pseudo-nodes by name; and
 * `other` for the rest (natives without a URL, eval'd code, files outside
 * root).
 */
export function classifyFrame(frame: CallFrame, o: { root?: string | undefined; project?: string | undefined } = {}): FrameClass {
  const url = frame.url;
  const fn = frame.functionName;
  if (url === "" && PSEUDO_NODES.has(fn)) return { name: fn, location: "", area: fn === "(root)" ? "other" : fn };
  const name = fn === "" ? "(anonymous)" : fn;
  if (url === "") return { name, location: "", area: "other" };
  const line = frame.lineNumber >= 0 ? `:${frame.lineNumber + 1}` : "";

  if (url.startsWith("node:")) return { name, location: `${url}${line}`, area: nodeArea(url) };
  // WebAssembly: in the run API, PGlite's PostgreSQL. Its "line" is always 1, so it is left out.
  if (url.startsWith("wasm://")) return { name, location: url, area: "wasm" };

  const path = filePath(url);
  if (path === undefined) return { name, location: `${url}${line}`, area: "other" };

  const parts = path.split(/[\\/]/);
  const nm = parts.lastIndexOf("node_modules");
  if (nm >= 0 && nm + 1 < parts.length) {
    const scoped = parts[nm + 1]?.startsWith("@") === true && nm + 2 < parts.length;
    const pkg = parts.slice(nm + 1, nm + (scoped ? 3 : 2)).join("/");
    const rest = parts.slice(nm + (scoped ? 3 : 2)).join("/");
    return { name, location: `${pkg} › ${rest}${line}`, area: pkg };
  }

  if (o.root !== undefined) {
    const root = resolve(o.root);
    const rel = relative(root, path);
    if (rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)) {
      const project = o.project ?? basename(root);
      const segments = rel.split(sep);
      const area = segments.length > 1 ? `${project}: ${segments[0]}` : project;
      return { name, location: `${segments.join("/")}${line}`, area };
    }
  }
  return { name, location: `${path}${line}`, area: "other" };
}

function nodeArea(url: string): string {
  const internal = /^node:internal\/(deps\/[^/]+|[^/]+)/.exec(url);
  if (internal) return `node:internal/${internal[1] ?? ""}`;
  return `node:${url.slice("node:".length).split("/")[0] ?? ""}`;
}

/** A file URL or an absolute path (CommonJS frames carry plain paths) as a path; undefined for anything else. */
function filePath(url: string): string | undefined {
  if (url.startsWith("file:")) {
    try {
      return fileURLToPath(url);
    } catch {
      return undefined;
    }
  }
  return isAbsolute(url) ? url : undefined;
}

async function projectName(root: string): Promise<string> {
  try {
    const pkg: unknown = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
    if (typeof pkg === "object" && pkg !== null && "name" in pkg && typeof pkg.name === "string" && pkg.name !== "") return pkg.name;
  } catch {
    // No package.json: the folder name is the next best label.
  }
  return basename(root);
}

function parseProfile(raw: unknown, file: string): CpuProfile {
  const bad = (what: string): Error => new Error(`${file}: not a V8 CPU profile (${what})`);
  if (typeof raw !== "object" || raw === null) throw bad("not a JSON object");
  const p = raw as Record<string, unknown>;
  if (!Array.isArray(p.nodes)) throw bad("no nodes");
  if (!isNumbers(p.samples) || !isNumbers(p.timeDeltas)) throw bad("no samples/timeDeltas");
  if (typeof p.startTime !== "number" || typeof p.endTime !== "number") throw bad("no startTime/endTime");
  const nodes: ProfileNode[] = p.nodes.map((n: unknown) => {
    if (typeof n !== "object" || n === null) throw bad("a node is not an object");
    const { id, callFrame } = n as { id?: unknown; callFrame?: unknown };
    if (typeof id !== "number" || typeof callFrame !== "object" || callFrame === null) throw bad("a node without id/callFrame");
    const cf = callFrame as Record<string, unknown>;
    return {
      id,
      callFrame: {
        functionName: typeof cf.functionName === "string" ? cf.functionName : "",
        url: typeof cf.url === "string" ? cf.url : "",
        lineNumber: typeof cf.lineNumber === "number" ? cf.lineNumber : -1,
        columnNumber: typeof cf.columnNumber === "number" ? cf.columnNumber : -1,
      },
    };
  });
  return { nodes, startTime: p.startTime, endTime: p.endTime, samples: p.samples, timeDeltas: p.timeDeltas };
}

function isNumbers(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === "number");
}

/**
 * Two tables, the top functions by self time and the areas, under a line
 * giving busy, idle and sampled ms; percents are of busy time.
 */
export function formatProfile(s: ProfileSummary, title: string): string {
  // formatTable right-aligns every column but the first; padding the locations
  // here keeps paths readable from the left.
  const width = Math.max("location".length, ...s.functions.map((f) => f.location.length));
  const functions = formatTable(
    `Top ${s.functions.length} functions by self time`,
    ["function", "self ms", "% busy", "location".padEnd(width)],
    s.functions.map((f) => [f.name, f.selfMs, f.percent, f.location.padEnd(width)]),
  );
  const areas = formatTable(
    "Self time by area",
    ["area", "self ms", "% busy"],
    s.areas.map((a) => [a.area, a.selfMs, a.percent]),
  );
  const head =
    `${title}: ${s.busyMs.toFixed(0)} ms busy, ${s.idleMs.toFixed(0)} ms idle ` +
    `(${s.sampledMs.toFixed(0)} ms sampled of ${s.totalMs.toFixed(0)} ms profiled, ${s.samples} samples; % of busy time)`;
  return [head, functions, areas].join("\n");
}

/**
 * The newest `*.cpuprofile` in `dir` (full path), or undefined if there is
 * none or no such folder. By modification time: node's names carry the
 * second, the pid and a sequence number, which do not order profiles of
 * different processes written in the same second.
 */
export async function newestProfile(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let best: { path: string; mtimeMs: number; name: string } | undefined;
  for (const name of names) {
    if (!name.endsWith(".cpuprofile")) continue;
    const path = join(dir, name);
    const st = await stat(path);
    if (!st.isFile()) continue;
    if (!best || st.mtimeMs > best.mtimeMs || (st.mtimeMs === best.mtimeMs && name > best.name)) best = { path, mtimeMs: st.mtimeMs, name };
  }
  return best?.path;
}
