// The run API's last line of defence (issue 11), in a real Node process: a
// stray rejection or a dependency's connection error thrown outside any
// request is logged and the process keeps going; any other uncaught exception
// exits 1, so that its supervisor restarts it.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, startProcess } from "../support/index.js";

const GUARDS = join(ROOT, "operator/dist/api/process-guards.js");

/** Runs `body` as an ES module with the guards installed (pino logging JSON to stdout); answers the exit code and lines. */
async function withGuards(body: string): Promise<{ code: number | string; lines: { level: number; msg: string }[] }> {
  const script = `
    import { pino } from "pino";
    import { installProcessGuards } from ${JSON.stringify(GUARDS)};
    const log = pino({ name: "guards-test" });
    installProcessGuards(log);
    ${body}
  `;
  const child = startProcess("guards", process.execPath, ["--input-type=module", "-e", script], {}, join(ROOT, "operator"));
  const code = await child.exited;
  const lines = child
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: number; msg: string });
  return { code, lines };
}

describe("the run API's process guards", () => {
  it("log an unhandled rejection and a dependency's connection error, and keep the process going", async () => {
    const { code, lines } = await withGuards(`
      Promise.reject(new Error("nobody awaited me"));
      setTimeout(() => {
        const err = new Error("terminating connection due to administrator command");
        err.code = "57P01";
        throw err;
      }, 10);
      setTimeout(() => { log.info("still here"); process.exit(0); }, 200);
    `);
    expect(lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^unhandled promise rejection; still serving/),
      expect.stringMatching(/^a dependency's connection failed outside any request; discarded it, still serving/),
      "still here",
    ]);
    expect(code).toBe(0);
  });

  it("exit 1 on any other uncaught exception, after logging it as fatal", async () => {
    const { code, lines } = await withGuards(`
      setTimeout(() => { throw new TypeError("a bug"); }, 10);
      setTimeout(() => { log.info("should not get here"); process.exit(0); }, 2000);
    `);
    expect(code).toBe(1);
    expect(lines).toEqual([expect.objectContaining({ level: 60, msg: "uncaught exception; exiting to be restarted" })]);
  });
});
