/**
 * The stand-in for `node:20-bookworm-slim` on a machine that reaches no image
 * registry: a minimal Debian bookworm from the Debian mirror apt already uses,
 * this machine's Node and npm copied in, a `node` user (uid 1000) as in the
 * official image, and this machine's CA bundle (npm inside the build may sit
 * behind a proxy that only this bundle trusts). Built once; podman keeps it.
 */
import { spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { CommandError, imageExists, requireTools, run } from "./podman.js";

/** The name the stand-in is imported as. */
export const STAND_IN_IMAGE = "localhost/offload-node:20-bookworm-slim";

const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const DEFAULT_MIRROR = "http://deb.debian.org/debian";

/** The base image cannot be made here; the message says what to do instead. */
export class BaseImageError extends Error {
  override readonly name = "BaseImageError";
}

export interface BaseImageOptions {
  /** Debian mirror for debootstrap. @defaultValue the first bookworm source in /etc/apt/sources.list* */
  mirror?: string;
  /** Rebuild even if the image exists. */
  force?: boolean;
  /** Called with this module's own progress lines. */
  progress?: (line: string) => void;
  /** Called with what debootstrap and podman print. */
  output?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * The Debian mirror apt uses for bookworm: the URI of the first source (one-line
 * `deb URI bookworm ...` or a deb822 stanza) whose suites include `bookworm`.
 */
export function aptMirror(dir = "/etc/apt"): string | undefined {
  const files: string[] = [];
  if (existsSync(join(dir, "sources.list"))) files.push(join(dir, "sources.list"));
  const d = join(dir, "sources.list.d");
  if (existsSync(d)) for (const f of readdirSync(d).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(d, f));
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    if (f.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] =>
          (new RegExp(`^${name}:\\s*(.*)$`, "im").exec(stanza)?.[1] ?? "").split(/\s+/).filter(Boolean);
        if (!field("Types").includes("deb") || /^Enabled:\s*no/im.test(stanza)) continue;
        const uri = field("URIs")[0];
        if (uri && field("Suites").includes("bookworm")) return uri;
      }
    } else {
      for (const line of text.split("\n")) {
        // deb [options] URI suite components...
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m?.[1] && m[2] === "bookworm") return m[1];
      }
    }
  }
  return undefined;
}

/** Makes the stand-in base image unless podman already has it; returns its name. */
export async function ensureBaseImage(opts: BaseImageOptions = {}): Promise<string> {
  const say = opts.progress ?? (() => undefined);
  const out = opts.output ?? (() => undefined);
  requireTools("podman");
  if (!opts.force && (await imageExists(STAND_IN_IMAGE))) {
    say(`base: ${STAND_IN_IMAGE} exists, reused`);
    return STAND_IN_IMAGE;
  }
  requireTools("debootstrap", "chroot", "tar");
  if (process.getuid?.() !== 0) {
    throw new BaseImageError(
      `making ${STAND_IN_IMAGE} runs debootstrap, which needs root; run as root, or give a Node 20 bookworm image with NODE_IMAGE=... (e.g. node:20-bookworm-slim)`,
    );
  }
  if (!process.versions.node.startsWith("20.")) {
    throw new BaseImageError(`the stand-in copies this machine's Node, which is ${process.version}, not 20; give a Node 20 image with NODE_IMAGE=...`);
  }
  const npmDir = resolve(dirname(process.execPath), "../lib/node_modules/npm");
  if (!existsSync(join(npmDir, "bin/npm-cli.js"))) throw new BaseImageError(`npm is not at ${npmDir}; give a Node 20 image with NODE_IMAGE=...`);
  if (!existsSync(CA_BUNDLE)) throw new BaseImageError(`no CA bundle at ${CA_BUNDLE}; install Debian's ca-certificates`);

  const mirror = opts.mirror ?? aptMirror() ?? DEFAULT_MIRROR;
  const work = mkdtempSync(join(tmpdir(), "offload-base-"));
  const root = join(work, "root");
  try {
    say(`base: debootstrap --variant=minbase bookworm from ${mirror} (a few minutes, once)`);
    await run("debootstrap", ["--variant=minbase", "bookworm", root, mirror], {
      onLine: (l) => {
        if (/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /.test(l)) return; // hundreds of these
        out(`base: ${l}`);
      },
      signal: opts.signal,
    });

    say(`base: adding Node ${process.version}, npm, the node user and the CA bundle`);
    for (const d of ["usr/local/bin", "usr/local/lib/node_modules", dirname(CA_BUNDLE).slice(1)]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(process.execPath, join(root, "usr/local/bin/node"));
    cpSync(npmDir, join(root, "usr/local/lib/node_modules/npm"), { recursive: true });
    symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", join(root, "usr/local/bin/npm"));
    symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", join(root, "usr/local/bin/npx"));
    copyFileSync(CA_BUNDLE, join(root, CA_BUNDLE));
    // As in the official image: group and user `node`, uid and gid 1000.
    await run("chroot", [root, "groupadd", "--gid", "1000", "node"], { signal: opts.signal });
    await run("chroot", [root, "useradd", "--uid", "1000", "--gid", "node", "--shell", "/bin/bash", "--create-home", "node"], {
      signal: opts.signal,
    });
    for (const d of ["var/cache/apt/archives", "var/lib/apt/lists", "var/log"]) {
      for (const f of readdirSync(join(root, d))) if (f !== "partial" && f !== "lock") rmSync(join(root, d, f), { recursive: true, force: true });
    }

    say(`base: importing as ${STAND_IN_IMAGE}`);
    const tar = spawn("tar", ["--numeric-owner", "-C", root, "-cf", "-", "."], { stdio: ["ignore", "pipe", "inherit"] });
    const tarExit = new Promise<number | null>((r) => tar.once("close", r));
    await run(
      "podman",
      [
        "import",
        "--change", `ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        "--change", `ENV NODE_VERSION=${process.versions.node}`,
        "--change", `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
        "--change", `LABEL dev.offload.stand-in="node:20-bookworm-slim, made by scripts/images/base.ts"`,
        "--change", `CMD ["node"]`,
        "-",
        STAND_IN_IMAGE,
      ],
      { input: tar.stdout, onLine: (l) => out(`base: ${l}`), signal: opts.signal },
    );
    const code = await tarExit;
    if (code !== 0) throw new CommandError(`tar -C ${root} -c .`, code ?? -1, "");
    return STAND_IN_IMAGE;
  } finally {
    await removeTree(work, say);
  }
}

/**
 * Removes the work folder, but first unmounts what debootstrap mounted in it
 * (proc, sys, and /dev when it binds the host's): an interrupted debootstrap
 * leaves them, and a recursive delete through a bind mount of /dev would
 * delete the host's device nodes. Left in place, and said so, if any stays.
 */
async function removeTree(work: string, say: (line: string) => void): Promise<void> {
  const mountsUnder = (): string[] =>
    readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m.startsWith(`${work}/`))
      .sort((a, b) => b.length - a.length);
  for (const m of mountsUnder()) await run("umount", ["-l", m]).catch(() => undefined);
  if (mountsUnder().length) {
    say(`base: ${work} still has mounts (${mountsUnder().join(", ")}); left in place, remove it by hand after unmounting`);
    return;
  }
  rmSync(work, { recursive: true, force: true });
}
