/**
 * The exit codes of `offload`, which scripts may rely on. They are part of the
 * CLI's contract: documented in docs/cli.md and in `offload --help`.
 */
import { isApiError, isOffloadError } from "../errors.js";

export const EXIT = {
  /** The command did what was asked (and a run waited for completed). */
  OK: 0,
  /** A run waited for (`--wait`, `--follow`) ended FAILED or CANCELLED. */
  RUN_FAILED: 1,
  /** The command line or the configuration is wrong (unknown option, bad JSON, OFFLOAD_API_URL malformed, a body the API refused as invalid). */
  USAGE: 2,
  /** No run has this id, no schedule this key. */
  NOT_FOUND: 3,
  /** The API refused the caller: no token, a wrong one, or no right to do this (401/403). */
  AUTH: 4,
  /** The API could not be reached, or said it cannot serve now (503). */
  UNREACHABLE: 5,
  /** The API refused the request for another reason: e.g. cancelling a run that completed, retrying one that did not fail (409), or rate limiting (429). */
  REFUSED: 6,
  /** Something unexpected went wrong in the CLI itself (a bug: please report it with the message). */
  INTERNAL: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The text `offload --help` ends with. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  ok (with --wait/--follow: the run completed)
  1  the run waited for ended FAILED or CANCELLED
  2  usage: a bad option or argument, malformed --params, parameters the
     task's registered schema refuses, a cron expression or time zone the
     API cannot read, invalid configuration
  3  not found: no run has this id, no schedule this key
  4  auth: the API refused the token (401) or the right (403)
  5  unreachable: the API could not be reached, or answered 503
  6  refused: the API refused for another reason (e.g. 409 run already finished, 429)
  7  internal: an unexpected error in the CLI itself

Environment:
  OFFLOAD_API_URL    the run API (default http://127.0.0.1:8080)
  OFFLOAD_API_TOKEN  bearer token for the run API, if it needs one (a shared token)
  OFFLOAD_TOKEN_FILE a file holding it instead, re-read when it changes
                     (default /var/run/secrets/offload/token: a pod's projected
                     ServiceAccount token, audience offload)
`;

/** The exit code an error thrown by a command stands for. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (isApiError(err)) {
    if (err.status === 404) return EXIT.NOT_FOUND;
    if (err.status === 401 || err.status === 403) return EXIT.AUTH;
    if (err.status === 400 || err.status === 413) return EXIT.USAGE;
    if (err.status === 503 || err.status === 502 || err.status === 504) return EXIT.UNREACHABLE;
    return EXIT.REFUSED;
  }
  if (isOffloadError(err)) {
    switch (err.code) {
      case "OFFLOAD_API_UNREACHABLE":
        return EXIT.UNREACHABLE;
      case "OFFLOAD_CONFIG":
        return EXIT.USAGE;
      case "OFFLOAD_RUN_FINISHED":
      case "OFFLOAD_RUN_NOT_RETRYABLE":
        return EXIT.REFUSED;
      default:
        return EXIT.REFUSED;
    }
  }
  return EXIT.INTERNAL;
}

/** A mistake on the command line the parser cannot see (e.g. `--params` that is not JSON). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
