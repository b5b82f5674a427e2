import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/index.js";
import { DEFAULT_CORPUS_DIR } from "./conformance/replay.js";

const TSX = join(ROOT, "node_modules/tsx/dist/cli.mjs");
const REPLAY = join(ROOT, "test/k8s/conformance/replay.ts");

/** Runs the replay tool as `npm run k8s:conformance` does; resolves to its exit code and output (never rejects on exit 1). */
async function replay(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [TSX, REPLAY, ...args], { cwd: ROOT, maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

// The stand-in against what a real kube-apiserver v1.32.6 answered (../shared/k8s-conformance).
describe("k8s conformance replay", () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("every case of the shared corpus matches", async () => {
    const { code, out } = await replay();
    const cases = out.split("\n").filter((l) => /^(ok|FAIL) /.test(l));
    expect(cases.length, `the tool said:\n${out.slice(-3000)}`).toBeGreaterThanOrEqual(92);
    // The differing cases with what differs, so a failure says which rule the stand-in lacks.
    expect(out.split("\n").filter((l) => l.startsWith("FAIL ") || l.startsWith("    ")).join("\n")).toBe("");
    expect(code).toBe(0);
  });

  it("fails, naming the case, when an answer differs from the recorded one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "offload-conformance-"));
    temps.push(dir);
    await cp(DEFAULT_CORPUS_DIR, dir, { recursive: true });
    const file = join(dir, "api-semantics.json");
    const corpus = JSON.parse(await readFile(file, "utf8")) as { cases: { name: string; response: { status: number; reason?: string } }[] };
    const altered = corpus.cases.find((c) => c.name === "api.widget-get-missing")!;
    altered.response = { status: 200, reason: undefined };
    await writeFile(file, JSON.stringify(corpus));
    const { code, out } = await replay("--case", "api.widget-get-missing", dir);
    expect(code).toBe(1);
    expect(out).toContain("FAIL api.widget-get-missing");
    expect(out).toMatch(/status: expected 200, got 404/);
  });

  it("says how to use it, and refuses a folder without a corpus", async () => {
    const help = await replay("--help");
    expect(help.code).toBe(0);
    expect(help.out).toContain("Usage: npm run k8s:conformance");
    const empty = await mkdtemp(join(tmpdir(), "offload-conformance-empty-"));
    temps.push(empty);
    const none = await replay(resolve(empty));
    expect(none.code).toBe(2);
    expect(none.out).toContain("no corpus files");
  });
});
