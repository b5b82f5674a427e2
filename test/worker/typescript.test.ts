import { mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, freePort, killAll, startNats, startProcess, waitFor, type Child, type NatsServer } from "../support/index.js";
import { WORKER_BIN, openBus, type Bus } from "./helpers.js";

// TypeScript task modules and --watch, as a developer uses them: `.ts` files in
// an app folder, loaded by the built offload-worker with no build step.

/** An app folder outside the repo whose node_modules is the repo's, so `@offload/sdk` and zod resolve. */
async function appFolder(type: "module" | "commonjs"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "offload-ts-"));
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type }));
  return dir;
}

/** Types that only TypeScript accepts, so a module that were loaded without tsx fails to parse. */
const ESM_TASKS = (tag: string): string => `
import { task } from "@offload/sdk";
import { z } from "zod";
import { shout } from "./shout.mjs"; // shout.mts, by the name tsc wants
interface Greeting { text: string; via: string }
export const greet = task({ name: "greet-${tag}", input: z.object({ name: z.string() }) }, async ({ name }): Promise<Greeting> => {
  const text: string = shout(\`hello \${name}\`);
  return { text, via: "${tag}" };
});
`;
const SHOUT_MTS = `export function shout(s: string): string { return (s as string).toUpperCase(); }\n`;
const CJS_TASKS = (tag: string): string => `
const { task } = require("@offload/sdk");
const { z } = require("zod");
interface Greeting { text: string; via: string }
export const greet = task({ name: "greet-${tag}", input: z.object({ name: z.string() }) }, async ({ name }: { name: string }): Promise<Greeting> => {
  return { text: ("hello " + name).toUpperCase() as string, via: "${tag}" };
});
`;

describe("offload-worker: TypeScript task modules", () => {
  let nats: NatsServer;
  let bus: Bus;
  const dirs: string[] = [];

  beforeAll(async () => {
    nats = await startNats();
    bus = await openBus(nats.url);
  });
  afterAll(async () => {
    await killAll();
    await bus?.close();
    await nats?.stop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  const cases = [
    { file: "tasks.ts", type: "module", source: ESM_TASKS },
    { file: "tasks.ts", type: "commonjs", source: ESM_TASKS },
    { file: "tasks.mts", type: "commonjs", source: ESM_TASKS },
    { file: "tasks.cts", type: "module", source: CJS_TASKS },
  ] as const;
  for (const c of cases) {
    it(`serves a ${c.file} module (package type ${c.type}) and completes a run with its typed result`, async () => {
      const dir = await appFolder(c.type);
      dirs.push(dir);
      const tag = `${c.file.replace(".", "-")}-${c.type}`;
      await writeFile(join(dir, c.file), c.source(tag));
      await writeFile(join(dir, "shout.mts"), SHOUT_MTS);
      const port = await freePort();
      const worker = startProcess(`worker ${c.file}`, process.execPath, [WORKER_BIN, "--module", c.file], {
        OFFLOAD_NATS_URL: nats.url,
        OFFLOAD_WORKER_PORT: String(port),
        OFFLOAD_WORKER_HOST: "127.0.0.1",
      }, dir);
      let exitCode: number | string;
      try {
        await worker.waitForOutput("worker ready");
        const runId = await bus.dispatch(`greet-${tag}`, { name: "ada" });
        const done = await bus.outcome(runId);
        expect(done.type).toBe("COMPLETED");
        expect(done.result).toEqual({ text: "HELLO ADA", via: tag });
      } finally {
        exitCode = await worker.stop(10_000);
      }
      expect(exitCode).toBe(0);
    });
  }
});

// The module under --watch: `hold` runs until its release file exists, so a run
// can be in flight across a change; `version` returns the module's own tag and
// one from a file it imports.
const WATCHED_TASKS = (version: string): string => `
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { task } from "@offload/sdk";
import { z } from "zod";
import { LABEL } from "./label.js";
export const version = task({ name: "watched-version", input: z.object({}) }, async (_input, ctx) => ({ version: "${version}" as string, label: LABEL, workerId: ctx.workerId }));
export const hold = task({ name: "watched-hold", input: z.object({ release: z.string() }) }, async ({ release }, ctx) => {
  while (!existsSync(release)) await sleep(20, undefined, { signal: ctx.signal });
  return { version: "${version}" as string, workerId: ctx.workerId };
});
`;
const LABEL = (label: string): string => `export const LABEL: string = "${label}";\n`;

/** Saves as many editors do (a new file renamed over the old), so one save is one change however busy the machine. */
async function save(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

describe("offload-worker --watch", () => {
  let nats: NatsServer;
  let bus: Bus;
  let dir: string;
  let watcher: Child | undefined;

  beforeAll(async () => {
    nats = await startNats();
    bus = await openBus(nats.url);
    dir = await appFolder("module");
  });
  afterAll(async () => {
    await killAll();
    await bus?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const readyCount = (): number => (watcher?.output().match(/"msg":"worker ready"/g) ?? []).length;
  const untilReady = (n: number): Promise<true> => waitFor(`worker ready #${n}`, () => {
    if (watcher && watcher.proc.exitCode !== null) throw new Error(`the supervisor exited:\n${watcher.output().slice(-3000)}`);
    return readyCount() >= n || undefined;
  }, 30_000);
  const runVersion = async (): Promise<{ version: string; label: string; workerId: string }> => {
    const done = await bus.outcome(await bus.dispatch("watched-version", {}));
    expect(done.type).toBe("COMPLETED");
    return done.result as { version: string; label: string; workerId: string };
  };

  it("restarts after a change to the module or a file it imports; a run in flight at the change completes first", async () => {
    await writeFile(join(dir, "tasks.ts"), WATCHED_TASKS("v1"));
    await writeFile(join(dir, "label.ts"), LABEL("first"));
    const port = await freePort();
    watcher = startProcess("worker --watch", process.execPath, [WORKER_BIN, "--watch", "--module", "tasks.ts"], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_WORKER_PORT: String(port),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
      OFFLOAD_DRAIN_SECONDS: "60",
    }, dir);
    await untilReady(1);
    const before = await runVersion();
    expect(before).toMatchObject({ version: "v1", label: "first" });

    // A run in flight, then a change to the module's return value.
    const release = join(dir, "release");
    const held = await bus.dispatch("watched-hold", { release });
    await bus.event(held, "RUNNING");
    await save(join(dir, "tasks.ts"), WATCHED_TASKS("v2"));
    // The old worker drains (it logs "draining" on the supervisor's SIGTERM) and waits for the held run.
    await watcher.waitForOutput(/"msg":"draining"/, 30_000);
    await writeFile(release, "");
    const heldDone = await bus.outcome(held);
    expect(heldDone.type).toBe("COMPLETED");
    expect(heldDone.result).toMatchObject({ version: "v1", workerId: before.workerId });
    expect(bus.eventsOf(held).map((e) => e.type)).toEqual(["RUNNING", "COMPLETED"]); // finished, not redelivered

    await untilReady(2);
    const afterModule = await runVersion();
    expect(afterModule).toMatchObject({ version: "v2", label: "first" });
    expect(afterModule.workerId).not.toBe(before.workerId);

    // A change to a file the module imports.
    await save(join(dir, "label.ts"), LABEL("second"));
    await untilReady(3);
    expect(await runVersion()).toMatchObject({ version: "v2", label: "second" });

    // SIGTERM to the supervisor stops the worker too (drained) and exits 0.
    const pids = [...watcher.output().matchAll(/"pid":(\d+)[^\n]*"msg":"worker ready"/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(3);
    expect(await watcher.stop(20_000)).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it("waits for the next change after a module that fails to load, then serves the fixed one; killed, leaves no worker behind", async () => {
    await writeFile(join(dir, "broken.ts"), `export const x: number = ;\n`);
    const port = await freePort();
    watcher = startProcess("worker --watch (broken)", process.execPath, [WORKER_BIN, "--watch", "--module", "broken.ts"], {
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_WORKER_PORT: String(port),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
    }, dir);
    await watcher.waitForOutput("waiting for a change");
    expect(watcher.proc.exitCode).toBeNull();
    await writeFile(join(dir, "label.ts"), LABEL("fixed"));
    await save(join(dir, "broken.ts"), WATCHED_TASKS("v3"));
    await untilReady(1);
    expect(await runVersion()).toMatchObject({ version: "v3", label: "fixed" });

    // A supervisor killed outright leaves no orphan: its worker sees the IPC channel close and exits.
    const pid = Number(/"pid":(\d+)[^\n]*"msg":"worker ready"/.exec(watcher.output())![1]);
    watcher.kill("SIGKILL");
    await watcher.exited;
    await waitFor("the orphaned worker to exit", () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    }, 30_000);
  });
});
