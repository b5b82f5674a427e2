import { readFileSync, statSync, type Stats } from "node:fs";
import { ConfigError } from "./errors.js";

/**
 * Where a pod finds its run API token when `OFFLOAD_TOKEN_FILE` is unset: the
 * chart's documented projected ServiceAccount token volume (audience
 * `offload`) is mounted at `/var/run/secrets/offload`.
 */
export const DEFAULT_TOKEN_FILE = "/var/run/secrets/offload/token";

/** How often, at most, the file is looked at again for a new token (the kubelet rotates well before expiry). */
const RECHECK_MS = 2000;

const identity = (s: Stats): string => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;

/**
 * A bearer token read from a file that is replaced from time to time: the
 * kubelet rotates a projected ServiceAccount token by swapping a symlink to a
 * new file. On use the file is stat'ed (at most every {@link RECHECK_MS}),
 * and read again only when it is another file or changed. A file that
 * vanishes or is empty for a moment keeps the last token.
 */
export class TokenFile {
  readonly path: string;
  #token: string | undefined;
  #seen = "";
  #checkedAt = 0;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * The token file named by `OFFLOAD_TOKEN_FILE` (which must exist and hold a
   * token, else a `ConfigError` naming it), else the default path if a token
   * is there, else undefined.
   */
  static open(named: string | undefined): TokenFile | undefined {
    const file = new TokenFile(named ?? DEFAULT_TOKEN_FILE);
    file.refresh();
    if (file.#token !== undefined) return file;
    if (named === undefined) return undefined;
    throw new ConfigError(
      `Offload SDK: OFFLOAD_TOKEN_FILE is ${named}, which ${file.#seen ? "is empty" : "does not exist or cannot be read"}; ` +
        "mount the projected ServiceAccount token there (see the chart's docs), or unset it",
    );
  }

  /** The token as the file holds it now (looked at again at most every few seconds). */
  get token(): string | undefined {
    if (Date.now() - this.#checkedAt >= RECHECK_MS) this.refresh();
    return this.#token;
  }

  /** Looks at the file now; true when it holds another token than before (e.g. after a 401: it may have just been rotated). */
  refresh(): boolean {
    this.#checkedAt = Date.now();
    let stats: Stats;
    try {
      stats = statSync(this.path);
    } catch {
      return false;
    }
    const id = identity(stats);
    if (id === this.#seen) return false;
    let text: string;
    try {
      text = readFileSync(this.path, "utf8").trim();
    } catch {
      return false;
    }
    this.#seen = id;
    if (!text || text === this.#token) return false;
    this.#token = text;
    return true;
  }
}
