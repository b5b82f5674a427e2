/**
 * `npm run images`: builds Offload's three images with podman from the
 * Dockerfile at the repository's root, one target after the other (the shared
 * build stage comes from podman's layer cache after the first):
 *   control-plane  the run API and the controller
 *   worker         the image task images are built FROM
 *   examples       the worker with the example tasks (examples/taskworker.yaml)
 * The base image is NODE_IMAGE when given (pulled as usual), else a stand-in
 * for node:20-bookworm-slim made once with debootstrap (./base.ts).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureBaseImage } from "./base.js";
import { requireTools, run } from "./podman.js";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** The Dockerfile's targets, in build order, and the repository each is tagged into. */
export const TARGETS = ["control-plane", "worker", "examples"] as const;
export type Target = (typeof TARGETS)[number];

export interface BuildOptions {
  /** Image name prefix. @defaultValue "localhost" */
  registry?: string;
  /** Tag of every image. @defaultValue the version in the root package.json */
  tag?: string;
  /** Base image; unset makes (or reuses) the debootstrap stand-in. */
  nodeImage?: string;
  /** Targets to build. @defaultValue all three */
  targets?: readonly Target[];
  /** Called with this module's own progress lines. */
  progress?: (line: string) => void;
  /** Called with every line podman and debootstrap print, prefixed with the step. */
  output?: (line: string) => void;
  signal?: AbortSignal;
}

/** The name of a target's image: `REGISTRY/offload-TARGET:TAG`. */
export function imageName(target: Target, registry: string, tag: string): string {
  return `${registry.replace(/\/+$/, "")}/offload-${target}:${tag}`;
}

export function defaultTag(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
}

/** Builds the images; resolves with each target's image name. */
export async function buildImages(opts: BuildOptions = {}): Promise<Record<Target, string>> {
  const say = opts.progress ?? (() => undefined);
  const out = opts.output ?? (() => undefined);
  requireTools("podman");
  const registry = opts.registry ?? "localhost";
  const tag = opts.tag ?? defaultTag();
  const nodeImage = opts.nodeImage ?? (await ensureBaseImage({ progress: say, output: out, signal: opts.signal }));
  const names = {} as Record<Target, string>;
  for (const target of opts.targets ?? TARGETS) {
    const name = imageName(target, registry, tag);
    say(`${target}: building ${name} FROM ${nodeImage}`);
    const started = Date.now();
    await run(
      "podman",
      [
        "build",
        // The bridge network needs iptables, which a build has no use for; npm ci
        // inside reaches the registry the same way the host does.
        "--network", "host",
        "--layers",
        "--target", target,
        "--build-arg", `NODE_IMAGE=${nodeImage}`,
        "--tag", name,
        "--file", join(REPO_ROOT, "Dockerfile"),
        REPO_ROOT,
      ],
      { onLine: (l) => out(`${target}: ${l}`), signal: opts.signal },
    );
    say(`${target}: built ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    names[target] = name;
  }
  return names;
}

const HELP = `Usage: npm run images -- [options]

Builds Offload's images with podman from the Dockerfile:
  control-plane  REGISTRY/offload-control-plane:TAG  the run API and the controller
  worker         REGISTRY/offload-worker:TAG         the base of task images
  examples       REGISTRY/offload-examples:TAG       the example tasks (examples/taskworker.yaml)

Options:
  --registry R     image name prefix (default localhost)
  --tag T          tag of every image (default: the version in package.json)
  --target T       build only this target; repeatable
  --node-image I   base image (default: $NODE_IMAGE, else a stand-in for
                   node:20-bookworm-slim made once with debootstrap, as root,
                   from the Debian mirror in /etc/apt/sources.list*)
  --rebuild-base   make the debootstrap stand-in again even if podman has it
  -q, --quiet      only this script's own lines, not podman's
  -h, --help       this text

Needs podman (and runc, debootstrap for the stand-in): bash scripts/setup.sh
With Docker and a registry, the Dockerfile builds as it is:
  docker build --target control-plane -t REGISTRY/offload-control-plane:TAG .`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        registry: { type: "string" },
        tag: { type: "string" },
        target: { type: "string", multiple: true },
        "node-image": { type: "string" },
        "rebuild-base": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    console.error(`images: ${(err as Error).message}; see --help`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const targets = args.target ?? [...TARGETS];
  const unknown = targets.filter((t) => !(TARGETS as readonly string[]).includes(t));
  if (unknown.length) {
    console.error(`images: unknown --target ${unknown.join(", ")}; the targets are ${TARGETS.join(", ")}`);
    return 2;
  }
  const ac = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => ac.abort(new Error(`images: stopped by ${sig}`)));
  const say = (line: string): void => console.log(`images: ${line}`);
  const out = args.quiet ? undefined : (line: string): void => console.log(`  ${line}`);
  const started = Date.now();
  try {
    const nodeImage =
      args["node-image"] ??
      process.env.NODE_IMAGE ??
      (await ensureBaseImage({ force: args["rebuild-base"] ?? false, progress: say, output: out, signal: ac.signal }));
    const names = await buildImages({
      registry: args.registry,
      tag: args.tag,
      nodeImage,
      targets: targets as Target[],
      progress: say,
      output: out,
      signal: ac.signal,
    });
    console.log(`images: done in ${((Date.now() - started) / 1000).toFixed(1)} s:\n  ${Object.values(names).join("\n  ")}`);
    return 0;
  } catch (err) {
    console.error(`images: ${(err as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
