import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { extname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError, isTask, type Task } from "@offload/sdk/internal";

/** Extensions of task modules compiled on load by tsx. */
export const TYPESCRIPT_EXTENSIONS: readonly string[] = [".ts", ".mts", ".cts"];

/** Options of {@link loadTasks}. */
export interface LoadOptions {
  /**
   * Called with the path of each file the module imports (outside node_modules), the module's
   * own included, as it is loaded; `offload-worker --watch` watches these. Loads the module
   * through tsx whatever its extension, since tsx's loader is what reports the imports.
   */
  onImport?: (file: string) => void;
}

/** The absolute path of the task module; a `ConfigError` if there is no such file. */
export async function findModule(path: string, cwd: string = process.cwd()): Promise<string> {
  const file = resolve(cwd, path);
  try {
    await stat(file);
  } catch {
    throw new ConfigError(`offload-worker: task module ${file} does not exist (check --module / OFFLOAD_MODULE)`);
  }
  return file;
}

let typescript: Promise<void> | undefined;

/**
 * Registers tsx's loaders once: ESM for `import`, CommonJS for `require` and for `.ts` files in a
 * package without `"type": "module"`. Imported lazily, so a JavaScript module pays nothing.
 */
function registerTypeScript(onImport?: (file: string) => void): Promise<void> {
  typescript ??= (async () => {
    const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
    esm.register({
      ...(onImport
        ? {
            onImport: (url: string) => {
              if (url.startsWith("file:") && !url.includes("/node_modules/")) onImport(fileURLToPath(url));
            },
          }
        : {}),
    });
    cjs.register();
  })();
  return typescript;
}

/**
 * Imports the module at `path` (relative to `cwd`) and returns the tasks it
 * exports: named exports and a default export that is a task or an array of
 * tasks, or an object of tasks (what a TypeScript module compiled to CommonJS
 * exports). With `names`, only those (in that order); an unknown name is an
 * error that lists the tasks there are. A `.ts`, `.mts` or `.cts` module is
 * compiled on load by tsx (no build step; types are not checked).
 */
export async function loadTasks(path: string, names?: readonly string[], cwd: string = process.cwd(), options: LoadOptions = {}): Promise<Task[]> {
  const file = await findModule(path, cwd);
  const ext = extname(file);
  if (options.onImport || TYPESCRIPT_EXTENSIONS.includes(ext)) await registerTypeScript(options.onImport);
  options.onImport?.(file);
  let mod: Record<string, unknown>;
  try {
    // A .cts module goes through require(): imported, Node's ESM loader (with tsx's hooks in it) fails to
    // require() the ESM-only SDK from it ("request for './task.js' is not in cache" on Node 20).
    if (ext === ".cts") mod = { default: createRequire(file)(file) as unknown };
    else mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = new ConfigError(`offload-worker: cannot load task module ${file}: ${(err as Error)?.stack ?? String(err)}`);
    throw e;
  }
  const found = new Map<string, Task>();
  const add = (value: unknown, where: string): void => {
    if (!isTask(value)) return;
    const seen = found.get(value.name);
    if (seen && seen !== value) throw new ConfigError(`offload-worker: module ${file} exports two different tasks named "${value.name}" (one as ${where})`);
    found.set(value.name, value);
  };
  for (const [key, value] of Object.entries(mod)) {
    if (key === "default" && Array.isArray(value)) value.forEach((v, i) => add(v, `default[${i}]`));
    else if (key === "default" && isPlainObject(value)) Object.entries(value).forEach(([k, v]) => add(v, `default.${k}`));
    else add(value, key);
  }
  if (found.size === 0) {
    throw new ConfigError(`offload-worker: module ${file} exports no task; export the values task() returns (export const resize = task(...))`);
  }
  if (!names) return [...found.values()];
  const unknown = names.filter((n) => !found.has(n));
  if (unknown.length > 0) {
    throw new ConfigError(
      `offload-worker: module ${file} has no task ${unknown.map((n) => `"${n}"`).join(", ")} (from --tasks / OFFLOAD_TASKS); it has: ${[...found.keys()].join(", ")}`,
    );
  }
  return [...new Set(names)].map((n) => found.get(n) as Task);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || isTask(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
