import { execFile } from "node:child_process";
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, freePort, startProcess, startStack, stopSharedPostgres, type Child, type Stack } from "../support/index.js";

// An app outside this repo, as the README's "Use Offload in your app" walks it:
// pack @offload/sdk and @offload/worker, install the tarballs with npm in a new
// folder, write a TypeScript task module and a script that delays a run,
// type-check them against the published types, serve the module with the
// packed offload-worker, run the script and read its typed result.

const run = promisify(execFile);

/** Versions the repo already installed, so that npm finds them in its cache. */
async function installedVersion(name: string): Promise<string> {
  return (JSON.parse(await readFile(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
}

async function npm(cwd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run("npm", args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(" ")} failed in ${cwd}: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

interface Packed {
  name: string;
  filename: string;
  files: { path: string }[];
}

/** Every symbolic link under `dir`, with where it resolves to. */
async function symlinksUnder(dir: string): Promise<{ link: string; target: string }[]> {
  const found: { link: string; target: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isSymbolicLink()) continue;
    const link = join(entry.parentPath, entry.name);
    found.push({ link, target: await realpath(link).catch(() => `(dangling) ${link}`) });
  }
  return found;
}

const TASKS_TS = `import { task } from "@offload/sdk";
import { z } from "zod";

export const add = task(
  { name: "add", input: z.object({ a: z.number(), b: z.number() }) },
  async ({ a, b }, ctx) => {
    ctx.log.info({ a, b }, "adding");
    return { sum: a + b };
  },
);
`;

const DELAY_TS = `import { add } from "./tasks.js";

const run = await add.delay({ a: 2, b: 3 });
const { sum } = await run.result({ timeoutSeconds: 30 });
const typed: number = sum;
console.log(JSON.stringify({ runId: run.id, sum: typed }));

// @ts-expect-error the input schema says \`a\` is a number: the published types refuse a string
export const wrongInput: Parameters<typeof add.delay>[0] = { a: "2", b: 3 };
// @ts-expect-error the task returns { sum }: there is no \`product\`
export const wrongResult = (r: Awaited<ReturnType<Awaited<ReturnType<typeof add.delay>>["result"]>>) => r.product;
`;

const TSCONFIG = {
  compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
  include: ["*.ts"],
};

describe("an app outside the repo, from the packed tarballs", () => {
  let tmp: string;
  let app: string;
  let packed: Packed[];
  let stackStart: Promise<Stack | Error> | undefined;
  let worker: Child | undefined;

  beforeAll(async () => {
    // The run API and NATS start while npm works; the last test needs them.
    stackStart = startStack().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    tmp = await mkdtemp(join(tmpdir(), "offload-app-"));
    const packs = join(tmp, "packs");
    app = join(tmp, "my-app");
    await mkdir(packs);
    await mkdir(app);
    // 1. pack (what `npm publish` would upload)
    packed = JSON.parse(await npm(ROOT, ["pack", "-w", "sdk", "-w", "worker", "--pack-destination", packs, "--json", "--loglevel=error"])) as Packed[];
    const tarball = (name: string): string => join(packs, packed.find((p) => p.name === name)!.filename);
    // 2. install, as the README says, from npm's cache where it can
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "my-app", private: true, type: "module" }, null, 2));
    const quiet = ["--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];
    await npm(app, ["install", ...quiet, tarball("@offload/sdk"), tarball("@offload/worker"), `zod@${await installedVersion("zod")}`]);
    await npm(app, [
      "install",
      ...quiet,
      "-D",
      `typescript@${await installedVersion("typescript")}`,
      `tsx@${await installedVersion("tsx")}`,
      `@types/node@${await installedVersion("@types/node")}`,
    ]);
    // 3. write the task module, the script and a tsconfig
    await writeFile(join(app, "tasks.ts"), TASKS_TS);
    await writeFile(join(app, "delay.ts"), DELAY_TS);
    await writeFile(join(app, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
  }, 300_000);

  afterAll(async () => {
    await worker?.stop(10_000);
    const stack = await stackStart;
    if (stack && !(stack instanceof Error)) await stack.stop();
    await stopSharedPostgres();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("packs tarballs whose manifests point nowhere into the workspace", async () => {
    for (const p of packed) {
      const paths = p.files.map((f) => f.path);
      expect(paths).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]));
      expect(paths.filter((f) => f.includes("tsbuildinfo") || f.includes("node_modules"))).toEqual([]);
      const dir = p.name === "@offload/sdk" ? "sdk" : "worker";
      const manifest = JSON.parse(await readFile(join(app, "node_modules", p.name, "package.json"), "utf8")) as Record<string, unknown>;
      expect(manifest).toMatchObject({
        type: "module",
        license: "Apache-2.0",
        engines: { node: ">=20.10" },
        repository: { type: "git", url: "git+https://github.com/offload-dev/offload.git", directory: dir },
        types: "./dist/index.d.ts",
        exports: { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } },
      });
      const deps = Object.values({ ...(manifest.dependencies as object), ...(manifest.peerDependencies as object) }) as string[];
      expect(deps.filter((v) => /^(workspace:|file:|link:|\.|\/)/.test(v))).toEqual([]);
      expect(JSON.stringify(manifest)).not.toContain("../");
    }
    const worker = packed.find((p) => p.name === "@offload/worker")!;
    expect(worker.files.map((f) => f.path)).toContain("bin/offload-worker.js");
    const installed = async (name: string): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(join(app, "node_modules", name, "package.json"), "utf8")) as Record<string, unknown>;
    const sdk = await installed("@offload/sdk");
    const workerManifest = await installed("@offload/worker");
    expect(workerManifest.bin).toEqual({ "offload-worker": "./bin/offload-worker.js" });
    expect(sdk.bin).toEqual({ offload: "./bin/offload.js" });
    expect(packed.find((p) => p.name === "@offload/sdk")!.files.map((f) => f.path)).toEqual(expect.arrayContaining(["bin/offload.js", "dist/bin/offload.js", "dist/cli/main.js"]));
    // Exactly the sdk released with it: the worker imports @offload/sdk/internal, which is not a public API.
    expect((workerManifest.dependencies as Record<string, string>)["@offload/sdk"]).toBe(sdk.version);
    expect(sdk.exports).toMatchObject({ "./internal": { types: "./dist/internal.d.ts", default: "./dist/internal.js" } });
  });

  it("installs real copies: nothing in the app links or resolves into the repo", async () => {
    for (const name of ["@offload/sdk", "@offload/worker"]) {
      const st = await lstat(join(app, "node_modules", name));
      expect(st.isSymbolicLink(), `${name} is a symlink`).toBe(false);
      expect(st.isDirectory()).toBe(true);
    }
    const intoRepo = (await symlinksUnder(app)).filter((l) => !relative(ROOT, l.target).startsWith(".."));
    expect(intoRepo).toEqual([]);
    // Node's own resolution, from the app and from the worker (whose @offload/sdk must be the app's one copy).
    const { stdout } = await run(process.execPath, [
      "--input-type=module",
      "-e",
      `import { createRequire } from "node:module";
       const fromWorker = createRequire(import.meta.resolve("@offload/worker"));
       console.log(JSON.stringify([import.meta.resolve("@offload/sdk"), import.meta.resolve("@offload/worker"), import.meta.resolve("zod"), fromWorker.resolve("@offload/sdk/package.json")]));`,
    ], { cwd: app });
    const resolved = JSON.parse(stdout) as string[];
    for (const r of resolved) expect(r.replace(/^file:\/\//, "")).toContain(`${app}/node_modules/`);
    expect(resolved[3]).toBe(join(app, "node_modules/@offload/sdk/package.json"));
  });

  it("type-checks the app with tsc --noEmit against the published types", async () => {
    // The @ts-expect-error lines in delay.ts make this fail if the types were lost (any) or wrong.
    const tsc = await run(join(app, "node_modules/.bin/tsc"), ["--noEmit", "-p", "."], { cwd: app }).then(
      () => ({ code: 0, out: "" }),
      (err: { code?: number; stdout?: string }) => ({ code: err.code ?? 1, out: err.stdout ?? "" }),
    );
    expect(tsc.out).toBe("");
    expect(tsc.code).toBe(0);
  }, 180_000);

  it("serves tasks.ts with the packed offload-worker; delay.ts prints the typed result", async () => {
    const stack = await stackStart!;
    if (stack instanceof Error) throw stack;
    const port = await freePort();
    worker = startProcess("packed offload-worker", join(app, "node_modules/.bin/offload-worker"), ["--module", "tasks.ts"], {
      OFFLOAD_NATS_URL: stack.nats.url,
      OFFLOAD_WORKER_PORT: String(port),
      OFFLOAD_WORKER_HOST: "127.0.0.1",
    }, app);
    await worker.waitForOutput("worker ready", 30_000);
    const script = startProcess("node --import tsx delay.ts", process.execPath, ["--import", "tsx", "delay.ts"], { OFFLOAD_API_URL: stack.apiUrl }, app);
    expect(await script.exited).toBe(0);
    const printed = JSON.parse(script.output().trim().split("\n").at(-1)!) as { runId: string; sum: number };
    expect(printed.sum).toBe(5);
    const record = await stack.client.getRun(printed.runId);
    expect(record).toMatchObject({ task: "add", state: "COMPLETED" });

    // The CLI comes with the SDK: `npx offload` in the app finds the packed bin (no download), on the SDK's client.
    const npx = (args: string[]) =>
      run("npx", ["--no-install", "offload", ...args], { cwd: app, env: { ...process.env, OFFLOAD_API_URL: stack.apiUrl } });
    const got = JSON.parse((await npx(["runs", "get", printed.runId, "--json"])).stdout) as { id: string; state: string };
    expect(got).toMatchObject({ id: printed.runId, state: "COMPLETED" });
    expect((await npx(["--version"])).stdout.trim()).toBe((JSON.parse(await readFile(join(app, "node_modules/@offload/sdk/package.json"), "utf8")) as { version: string }).version);
  }, 120_000);
});
