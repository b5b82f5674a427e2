import { afterAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, killAll, startProcess } from "../support/index.js";

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

// `npm run dev` is the first thing a new user runs: it must show runs going
// through, and Ctrl-C must leave nothing behind.
describe("the local stack (npm run dev)", () => {
  let dataDir: string | undefined;
  afterAll(async () => {
    await killAll();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("delays a few jobs through the web app, shows them completed, and Ctrl-C stops everything", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "offload-dev-data-"));
    const dev = startProcess("npm run dev", process.execPath, [join(ROOT, "scripts/dev.mjs")], { OFFLOAD_DATA_DIR: dataDir }, ROOT, { group: true });
    await dev.waitForOutput("Offload is running.", 90_000);

    const out = dev.output();
    expect(out.match(/delayed.* → run [0-9a-f-]{36} \(HTTP 202\)/g)).toHaveLength(3);
    expect(out.match(/COMPLETED.* run [0-9a-f-]{36}: \{/g)).toHaveLength(3);
    const ports = [...out.matchAll(/(?:http|nats):\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    const unique = [...new Set(ports)];
    expect(unique.length).toBeGreaterThanOrEqual(4); // NATS, API, worker, web app
    const apiUrl = out.match(/Run API:\s+(http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    expect((await fetch(`${apiUrl}/v1/runs`)).status).toBe(200);

    dev.kill("SIGINT");
    expect(await dev.exited).toBe(0);
    expect(dev.output()).toContain("nothing left running");
    for (const port of unique) expect(await portIsFree(port), `port ${port} released`).toBe(true);
  }, 150_000);
});
