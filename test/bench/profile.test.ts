/**
 * bench/profile.ts against real `node --cpu-prof` output (a child process
 * whose hot functions are known by name) and against hand-written profiles
 * whose self times can be computed by hand.
 */
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { classifyFrame, formatProfile, newestProfile, summarizeCpuProfile, type CallFrame, type ProfileSummary } from "../../bench/profile.js";
import { killAll, startProcess } from "../support/process.js";

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "offload-profile-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await killAll();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs `script` (written to `<root>/app/<name>`) under --cpu-prof and returns the profile folder once the process is gone. */
async function profileScript(root: string, name: string, script: string): Promise<{ profDir: string; exit: number | string; output: string }> {
  await mkdir(join(root, "app"), { recursive: true });
  const file = join(root, "app", name);
  await writeFile(file, script);
  const profDir = join(root, "prof");
  // NODE_OPTIONS unset: whatever the test runner put there must not end up in the profile.
  const child = startProcess(name, process.execPath, ["--cpu-prof", "--cpu-prof-dir", profDir, file], { NODE_OPTIONS: undefined });
  const exit = await child.exited;
  return { profDir, exit, output: child.output() };
}

function lineOf(source: string, text: string): number {
  const i = source.split("\n").findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`no "${text}" in the script`);
  return i + 1;
}

// The hot functions run until they have used so much CPU (not wall) time: on a
// loaded machine, a wall-clock loop gets a fraction of a core, and Node's own
// start-up (module compiling) could outweigh it.
const CPU_MS = `const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };`;

const BURN = `
${CPU_MS}
const text = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: "n" + i, tags: ["a", "b"], v: i * 1.5 })));
function burnCpuForProfile(ms) {
  const end = cpuMs() + ms;
  let x = 0;
  while (cpuMs() < end) for (let i = 0; i < 10000; i++) x += Math.sqrt(x + 1);
  return x;
}
function parseJsonForProfile(ms) {
  const end = cpuMs() + ms;
  let n = 0;
  while (cpuMs() < end) n += JSON.parse(text).length;
  return n;
}
burnCpuForProfile(300);
parseJsonForProfile(100);
await new Promise((r) => setTimeout(r, 150));
console.log("done");
`;

describe("summarizeCpuProfile on a real node --cpu-prof profile", () => {
  it("names the hot function first and splits busy time by area", async () => {
    const root = await tempDir();
    await writeFile(join(root, "package.json"), JSON.stringify({ name: "proftest" }));
    const run = await profileScript(root, "burn.mjs", BURN);
    expect(run.exit, run.output).toBe(0);
    const file = await newestProfile(run.profDir);
    expect(file).toMatch(/CPU\.\d+\.\d+\.\d+\.\d+\.\d+\.cpuprofile$/);
    const s = await summarizeCpuProfile(file ?? "", { root });

    const [first] = s.functions;
    expect(first).toMatchObject({ name: "burnCpuForProfile", location: `app/burn.mjs:${lineOf(BURN, "function burnCpuForProfile")}` });
    // Samples are taken in wall-clock time: on a loaded machine the split shifts, so only the order and rough sizes are checked.
    expect(first?.selfMs).toBeGreaterThan(100);
    const parse = s.functions.find((f) => f.name === "parseJsonForProfile");
    expect(parse?.location).toBe(`app/burn.mjs:${lineOf(BURN, "function parseJsonForProfile")}`);
    expect(parse?.selfMs).toBeGreaterThan(20);
    expect(first?.percent).toBeGreaterThan(parse?.percent ?? 100);
    expect(Math.max(...s.functions.map((f) => f.percent))).toBe(first?.percent);
    expect(s.functions.some((f) => f.name === "(idle)")).toBe(false);

    expectConsistent(s);
    const app = s.areas.find((a) => a.area === "proftest: app");
    expect(app?.percent).toBeGreaterThan(50);
    expect(s.areas[0]?.area === "proftest: app" || s.areas[0]?.area === "(idle)").toBe(true);
    expect(s.areas.find((a) => a.area === "(idle)")?.percent).toBeNull();
    expect(s.idleMs).toBeGreaterThan(50);
    // Node's own startup code is there too, grouped by subsystem.
    const nodeAreas = s.areas.filter((a) => a.area.startsWith("node:"));
    expect(nodeAreas.length).toBeGreaterThan(0);
    for (const a of nodeAreas) expect(a.area).toMatch(/^node:(internal\/)?[\w-]+$/);
    for (const f of s.functions.filter((f) => f.location.startsWith("node:"))) expect(f.location).toMatch(/^node:[\w/-]+:\d+$/);

    const text = formatProfile(s, "burn.mjs");
    expect(text).toContain("burnCpuForProfile");
    expect(text).toContain(`app/burn.mjs:${lineOf(BURN, "function burnCpuForProfile")}`);
    expect(text).toContain("proftest: app");
    expect(text).toMatch(/^burn\.mjs: \d+ ms busy, \d+ ms idle/);
    expect(text.split("\n").find((l) => l.startsWith("burnCpuForProfile"))).toMatch(/^burnCpuForProfile\s+\d+(\.\d+)?\s+\d+(\.\d+)?\s+app\/burn\.mjs:\d+$/);
  });

  it("keeps the top N functions only", async () => {
    const root = await tempDir();
    const run = await profileScript(root, "burn.mjs", BURN);
    expect(run.exit, run.output).toBe(0);
    const s = await summarizeCpuProfile((await newestProfile(run.profDir)) ?? "", { root, top: 2 });
    expect(s.functions.map((f) => f.name)).toEqual(["burnCpuForProfile", expect.any(String)]);
    // Without a package.json the root's folder name labels the project.
    expect(s.areas.map((a) => a.area)).toContain(`${root.split("/").pop() ?? ""}: app`);
  });
});

/** A script that keeps the event loop busy until a signal arrives, as the run API does. */
function serverScript(onSigterm: string): string {
  return `
${onSigterm}
${CPU_MS}
function burnCpuForProfile(ms) {
  const end = cpuMs() + ms;
  let x = 0;
  while (cpuMs() < end) for (let i = 0; i < 10000; i++) x += Math.sqrt(x + 1);
  return x;
}
let n = 0;
setInterval(() => {
  burnCpuForProfile(20);
  if (++n === 5) console.log("ready");
}, 25);
`;
}

describe("--cpu-prof and SIGTERM", () => {
  async function stopWithSigterm(script: string): Promise<{ profDir: string; exit: number | string }> {
    const root = await tempDir();
    const profDir = join(root, "prof");
    const file = join(root, "server.mjs");
    await writeFile(file, script);
    const child = startProcess("server.mjs", process.execPath, ["--cpu-prof", "--cpu-prof-dir", profDir, file], { NODE_OPTIONS: undefined });
    await child.waitForOutput("ready");
    child.kill("SIGTERM");
    return { profDir, exit: await child.exited };
  }

  // offload-api stops on SIGTERM through a handler that closes the API, then calls process.exit(0).
  it.each([
    ["process.exit(0) in the handler", `process.on("SIGTERM", () => process.exit(0));`],
    ["process.exit(0) after an async close", `process.on("SIGTERM", () => { setTimeout(() => process.exit(0), 50); });`],
  ])("writes the profile when a SIGTERM handler calls %s", async (_name, handler) => {
    const { profDir, exit } = await stopWithSigterm(serverScript(handler));
    expect(exit).toBe(0);
    const file = await newestProfile(profDir);
    expect(file).toBeDefined();
    const s = await summarizeCpuProfile(file ?? "");
    expect(s.functions[0]?.name).toBe("burnCpuForProfile");
  });

  it("writes no profile when SIGTERM kills a process without a handler", async () => {
    const { profDir, exit } = await stopWithSigterm(serverScript(""));
    expect(exit).toBe("SIGTERM");
    expect(await newestProfile(profDir)).toBeUndefined();
  });
});

describe("summarizeCpuProfile self time", () => {
  const frame = (functionName: string, url = "", lineNumber = -1): CallFrame => ({ functionName, url, lineNumber, columnNumber: -1 });

  async function writeProfile(profile: unknown): Promise<string> {
    const file = join(await tempDir(), "hand.cpuprofile");
    await writeFile(file, JSON.stringify(profile));
    return file;
  }

  it("gives each sample the time until the next one, the last one until endTime", async () => {
    const nodes = [
      { id: 1, callFrame: frame("(root)"), children: [2, 3, 5] },
      { id: 2, callFrame: frame("work", "file:///r/a.js", 9), children: [4] },
      { id: 3, callFrame: frame("(idle)") },
      { id: 4, callFrame: frame("inner", "file:///r/a.js", 19) },
      // Same function as node 2, reached through another path: one row.
      { id: 5, callFrame: frame("work", "file:///r/a.js", 9) },
    ];
    // Sample times: 100, 1100, 3100, 3600, 7600 µs; endTime 8000.
    const file = await writeProfile({ nodes, startTime: 0, endTime: 8000, samples: [2, 2, 4, 5, 3], timeDeltas: [100, 1000, 2000, 500, 4000] });
    const s = await summarizeCpuProfile(file, { root: "/r" });
    expect(s.functions).toEqual([
      { name: "work", location: "a.js:10", selfMs: 7, percent: round2((100 * 7) / 7.5) },
      { name: "inner", location: "a.js:20", selfMs: 0.5, percent: round2((100 * 0.5) / 7.5) },
    ]);
    expect(s).toMatchObject({ totalMs: 8, sampledMs: 7.9, idleMs: 0.4, busyMs: 7.5, samples: 5 });
    expect(s.areas).toEqual([
      { area: "r", selfMs: 7.5, percent: 100 },
      { area: "(idle)", selfMs: 0.4, percent: null },
    ]);
  });

  it("orders samples by time when V8 wrote them out of order", async () => {
    const nodes = [
      { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
      { id: 2, callFrame: frame("a", "node:internal/a", 0) },
      { id: 3, callFrame: frame("b", "node:internal/b", 0) },
      { id: 4, callFrame: frame("c", "node:internal/c", 0) },
    ];
    // Times 100, 2100, 1100 -> a@100, c@1100, b@2100, end 3000.
    const file = await writeProfile({ nodes, startTime: 0, endTime: 3000, samples: [2, 3, 4], timeDeltas: [100, 2000, -1000] });
    const s = await summarizeCpuProfile(file);
    expect(Object.fromEntries(s.functions.map((f) => [f.name, f.selfMs]))).toEqual({ a: 1, c: 1, b: 0.9 });
    expectConsistent(s);
  });

  it("counts only the time within a window, a sample straddling its edge for the part inside", async () => {
    const nodes = [
      { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
      { id: 2, callFrame: frame("startUp", "file:///r/a.js", 0) },
      { id: 3, callFrame: frame("work", "file:///r/a.js", 9) },
      { id: 4, callFrame: frame("(idle)") },
    ];
    // startUp@1000 owns 1000..5000, work@5000 5000..7000, idle@7000 7000..8000, work@8000 8000..10000 (endTime).
    const profile = { nodes, startTime: 1000, endTime: 10_000, samples: [2, 3, 4, 3], timeDeltas: [0, 4000, 2000, 1000] };
    const file = await writeProfile(profile);
    // The window 4000..9000: 1 ms of startUp, 2 + 1 ms of work, 1 ms idle.
    const s = await summarizeCpuProfile(file, { window: { fromUs: 4000, toUs: 9000 } });
    expect(Object.fromEntries(s.functions.map((f) => [f.name, f.selfMs]))).toEqual({ work: 3, startUp: 1 });
    expect(s).toMatchObject({ totalMs: 5, sampledMs: 5, idleMs: 1, busyMs: 4, samples: 3 });
    expectConsistent(s);
    // A window wider than the profile is the whole profile.
    const all = await summarizeCpuProfile(file, { window: { fromUs: 0, toUs: 1e9 } });
    expect(all).toEqual(await summarizeCpuProfile(file));
    expect(all).toMatchObject({ totalMs: 9, busyMs: 8, samples: 4 });
  });

  it("refuses a file that is not a CPU profile", async () => {
    const file = await writeProfile({ hello: "world" });
    await expect(summarizeCpuProfile(file)).rejects.toThrow(/not a V8 CPU profile/);
  });
});

describe("classifyFrame", () => {
  const root = { root: "/repo", project: "offload" };
  const at = (url: string, lineNumber: number, functionName = "f"): CallFrame => ({ functionName, url, lineNumber, columnNumber: 4 });

  it("shows the repository's own code relative to root, grouped by workspace folder", () => {
    expect(classifyFrame(at("file:///repo/operator/dist/store/events.js", 133, "append"), root)).toEqual({ name: "append", location: "operator/dist/store/events.js:134", area: "offload: operator" });
    // CommonJS frames carry plain paths.
    expect(classifyFrame(at("/repo/sdk/dist/client.js", 0), root)).toEqual({ name: "f", location: "sdk/dist/client.js:1", area: "offload: sdk" });
    expect(classifyFrame(at("file:///repo/top.js", 4), root)).toMatchObject({ location: "top.js:5", area: "offload" });
    expect(classifyFrame(at("file:///repo/bench/run.ts", 9), { root: "/repo/" })).toMatchObject({ area: "repo: bench" });
  });

  it("names the npm package, scoped or nested", () => {
    expect(classifyFrame(at("file:///repo/node_modules/pg/lib/client.js", 99, "query"), root)).toEqual({ name: "query", location: "pg › lib/client.js:100", area: "pg" });
    expect(classifyFrame(at("/repo/node_modules/@nats-io/nats-core/lib/protocol.js", 9), root)).toEqual({ name: "f", location: "@nats-io/nats-core › lib/protocol.js:10", area: "@nats-io/nats-core" });
    expect(classifyFrame(at("/repo/node_modules/fastify/node_modules/find-my-way/index.js", 0), root)).toMatchObject({ location: "find-my-way › index.js:1", area: "find-my-way" });
    // Outside root (or with no root) a package is still a package.
    expect(classifyFrame(at("file:///usr/lib/node_modules/zod/v4/core/parse.js", 2))).toMatchObject({ location: "zod › v4/core/parse.js:3", area: "zod" });
  });

  it("groups Node internals by subsystem and keeps their URLs", () => {
    expect(classifyFrame(at("node:internal/streams/readable", 560, "addChunk"), root)).toEqual({ name: "addChunk", location: "node:internal/streams/readable:561", area: "node:internal/streams" });
    expect(classifyFrame(at("node:internal/url", 10), root)).toMatchObject({ area: "node:internal/url" });
    expect(classifyFrame(at("node:internal/deps/undici/undici", 10), root)).toMatchObject({ area: "node:internal/deps/undici" });
    expect(classifyFrame(at("node:events", 518, "emit"), root)).toEqual({ name: "emit", location: "node:events:519", area: "node:events" });
  });

  it("puts WebAssembly (PGlite's PostgreSQL in the run API) under wasm, without a line", () => {
    expect(classifyFrame(at("wasm://wasm/021d3ac6", 0, "wasm-function[11114]"), root)).toEqual({ name: "wasm-function[11114]", location: "wasm://wasm/021d3ac6", area: "wasm" });
  });

  it("keeps V8 pseudo-nodes as names without a location", () => {
    for (const n of ["(garbage collector)", "(program)", "(idle)"]) expect(classifyFrame(at("", -1, n), root)).toEqual({ name: n, location: "", area: n });
    expect(classifyFrame(at("", -1, "(root)"), root)).toEqual({ name: "(root)", location: "", area: "other" });
  });

  it("puts natives, eval'd code and files outside root under other", () => {
    expect(classifyFrame(at("", -1, "openFileHandle"), root)).toEqual({ name: "openFileHandle", location: "", area: "other" });
    expect(classifyFrame(at("file:///elsewhere/x.js", 0, ""), root)).toEqual({ name: "(anonymous)", location: "/elsewhere/x.js:1", area: "other" });
    expect(classifyFrame(at("file:///repo/a.js", 0))).toMatchObject({ location: "/repo/a.js:1", area: "other" });
    expect(classifyFrame(at("file:///repository/a.js", 0), root)).toMatchObject({ area: "other" });
    expect(classifyFrame(at("evalmachine.<anonymous>", 0), root)).toMatchObject({ location: "evalmachine.<anonymous>:1", area: "other" });
  });
});

describe("newestProfile", () => {
  it("picks the most recently written profile, ignoring other files", async () => {
    const dir = await tempDir();
    const older = join(dir, "CPU.20260101.120000.900.0.001.cpuprofile");
    const newer = join(dir, "CPU.20260101.115959.100.0.001.cpuprofile");
    await writeFile(older, "{}");
    await writeFile(newer, "{}");
    await writeFile(join(dir, "notes.txt"), "");
    await utimes(older, new Date(1_000_000), new Date(1_000_000));
    await utimes(newer, new Date(2_000_000), new Date(2_000_000));
    expect(await newestProfile(dir)).toBe(newer);
  });

  it("is undefined for an empty or missing folder", async () => {
    const dir = await tempDir();
    expect(await newestProfile(dir)).toBeUndefined();
    expect(await newestProfile(join(dir, "missing"))).toBeUndefined();
  });
});

/** Invariants every summary holds. */
function expectConsistent(s: ProfileSummary): void {
  expect(s.busyMs + s.idleMs).toBeCloseTo(s.sampledMs, 1);
  expect(s.sampledMs).toBeLessThanOrEqual(s.totalMs + 0.01);
  const busyAreas = s.areas.filter((a) => a.percent !== null);
  expect(busyAreas.reduce((t, a) => t + (a.percent ?? 0), 0)).toBeCloseTo(100, 0);
  expect(s.areas.reduce((t, a) => t + a.selfMs, 0)).toBeCloseTo(s.sampledMs, 0);
  expect(s.functions.reduce((t, f) => t + f.selfMs, 0)).toBeLessThanOrEqual(s.busyMs + 0.01 * s.functions.length);
  const sorted = [...s.areas].sort((a, b) => b.selfMs - a.selfMs);
  expect(s.areas).toEqual(sorted);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
