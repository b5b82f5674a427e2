import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/index.js";

// npm links a package's commands at install time, before anything is built: a
// `bin` that pointed into dist/ left a fresh clone without `npx offload-worker`.
// Each bin is a committed shim that imports the built command. (That the
// commands answer `npx … --help` right after setup is scripts/check-bins.sh's
// job, which .ci/run runs on its clean clone.)

const run = promisify(execFile);
const PACKAGES = ["sdk", "worker", "operator"] as const;

async function bins(pkg: string): Promise<Record<string, string>> {
  const manifest = JSON.parse(await readFile(join(ROOT, pkg, "package.json"), "utf8")) as { bin?: Record<string, string> };
  return manifest.bin ?? {};
}

describe("the packages' commands", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "offload-bins-"));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("point at files git tracks, outside dist/, so a fresh clone has them before the build", async () => {
    const all = (await Promise.all(PACKAGES.map(async (pkg) => Object.entries(await bins(pkg)).map(([name, path]) => ({ pkg, name, path }))))).flat();
    expect(all.map((b) => b.name).sort()).toEqual(["offload", "offload-api", "offload-controller", "offload-worker"]);
    for (const b of all) {
      expect(b.path, `${b.name}`).not.toMatch(/(^|\/)dist\//);
      await run("git", ["ls-files", "--error-unmatch", join(b.pkg, b.path)], { cwd: ROOT }); // throws if untracked
    }
  });

  it("say to run npm run build when dist/ is missing, and exit 1", async () => {
    for (const pkg of PACKAGES) {
      for (const [name, path] of Object.entries(await bins(pkg))) {
        // The shim alone in a package folder without dist/, as in a clone before the build.
        const shim = join(tmp, pkg, path);
        await mkdir(join(shim, ".."), { recursive: true });
        await copyFile(join(ROOT, pkg, path), shim);
        await writeFile(join(tmp, pkg, "package.json"), JSON.stringify({ type: "module" }));
        const result = await run(process.execPath, [shim, "--help"]).then(
          () => ({ code: 0, stderr: "" }),
          (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? "" }),
        );
        expect(result.code, name).toBe(1);
        expect(result.stderr).toContain(`${name}: ${join(tmp, pkg, "dist/bin", `${name}.js`)} is not built yet; run \`npm run build\``);
      }
    }
  });
});
