/**
 * Start-up checks every Offload process shares: waiting a bounded time for a
 * dependency (NATS, PostgreSQL) to accept connections, and turning a failed
 * `listen()` into a message that names the setting to change. A pod often
 * starts before the servers it needs, so a refused connection is waited on
 * rather than fatal at once; a developer with a wrong URL is told so within
 * the wait instead of watching reconnects forever.
 */
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { redactUrl } from "./config.js";
import { ConfigError, OffloadError } from "./errors.js";

/** Default of `OFFLOAD_START_WAIT_SECONDS`: long enough for a pod started beside its NATS or PostgreSQL, short enough for a developer with a wrong URL. */
export const DEFAULT_START_WAIT_SECONDS = 30;

/** `OFFLOAD_START_WAIT_SECONDS`: how long a process waits at start for its dependencies to accept connections. */
export const startWaitSeconds = z.coerce
  .number()
  .min(0, "must be 0 (try once) or more seconds")
  .max(3600, "must be at most 3600 seconds")
  .default(DEFAULT_START_WAIT_SECONDS);

/** A TCP address to reach, and how to name it in a message (credentials redacted). */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** The URL as given, password masked. */
  readonly label: string;
}

/** A dependency did not accept connections within the start-up wait. The message names what was tried and the variable to check. */
export class UnreachableError extends OffloadError {
  constructor(message: string) {
    super("OFFLOAD_UNREACHABLE", message);
  }
}

/**
 * host and port of a NATS URL (`nats://`, `tls://`, or a bare `host:port`;
 * 4222 when none is given); undefined when it cannot be parsed, in which
 * case no TCP wait is made and the real connect reports the problem.
 */
export function natsEndpoint(url: string): Endpoint | undefined {
  const withScheme = /^[a-z][\w+.-]*:\/\//i.test(url) ? url : `nats://${url}`;
  const u = parseUrl(withScheme);
  if (!u) return undefined;
  return { host: unbracket(u.hostname) || "127.0.0.1", port: u.port ? Number(u.port) : 4222, label: redactUrl(url) };
}

/**
 * host and port of a PostgreSQL URL; undefined when it names a Unix socket
 * (`?host=/run/postgresql` or no host at all), which no TCP probe can check,
 * or cannot be parsed here (the driver then reports it).
 */
export function postgresEndpoint(url: string): Endpoint | undefined {
  const u = parseUrl(url);
  if (!u) return undefined;
  const hostParam = u.searchParams.get("host");
  if (hostParam?.startsWith("/") || (!u.hostname && !hostParam)) return undefined;
  const host = unbracket(u.hostname) || hostParam || "127.0.0.1";
  const port = u.port ? Number(u.port) : Number(u.searchParams.get("port") ?? 5432);
  return { host, port, label: redactUrl(url) };
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** Options of {@link retryUntil} and {@link waitForEndpoints}. */
export interface WaitOptions {
  /** Give up after this many seconds (0: try once). */
  readonly waitSeconds: number;
  /** Called while waiting, at most every `progressEverySeconds`: one log line, not one per attempt. */
  readonly onWaiting?: (progress: { elapsedSeconds: number; waitSeconds: number; reason: string }) => void;
  /** @defaultValue 5 */
  readonly progressEverySeconds?: number;
  /** Stops waiting (e.g. on SIGTERM); the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The outcome of a bounded wait: done, or why not (the last attempt's reason). */
export type WaitOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * Calls `attempt` until it resolves undefined (done) or the wait is over,
 * pausing between attempts (0.25 s growing to 2 s); the last attempt falls on
 * the deadline, so "within N s" means N seconds of trying. `attempt` gets the
 * time it may take (at most 3 s) and resolves with why it failed; it throws
 * for a failure that waiting cannot mend, which ends the wait at once.
 */
export async function retryUntil(attempt: (timeoutMs: number) => Promise<string | undefined>, options: WaitOptions): Promise<WaitOutcome> {
  const started = Date.now();
  const deadline = started + options.waitSeconds * 1000;
  const progressMs = (options.progressEverySeconds ?? 5) * 1000;
  // The first failure is reported at once, so a person knows what the process waits for; then every few seconds.
  let lastProgress = started - progressMs;
  let pauseMs = 250;
  for (;;) {
    options.signal?.throwIfAborted();
    const reason = await attempt(Math.max(500, Math.min(3000, deadline - Date.now())));
    if (reason === undefined) return { ok: true };
    const now = Date.now();
    if (now >= deadline) return { ok: false, reason };
    if (now - lastProgress >= progressMs) {
      lastProgress = now;
      options.onWaiting?.({ elapsedSeconds: Math.round((now - started) / 1000), waitSeconds: options.waitSeconds, reason });
    }
    await sleep(Math.min(pauseMs, deadline - now), undefined, options.signal ? { signal: options.signal } : {});
    pauseMs = Math.min(2000, pauseMs * 2);
  }
}

/**
 * Tries a TCP connection to each endpoint until one accepts or the wait is
 * over. A TCP connection says only that something listens: the caller's real
 * connect still reports protocol or credential problems.
 */
export async function waitForEndpoints(endpoints: readonly Endpoint[], options: WaitOptions): Promise<WaitOutcome> {
  return retryUntil(async (timeoutMs) => {
    const reasons: string[] = [];
    for (const endpoint of endpoints) {
      const refused = await tryConnect(endpoint, timeoutMs);
      if (refused === undefined) return undefined;
      reasons.push(endpoints.length > 1 ? `${endpoint.label}: ${refused}` : refused);
    }
    return reasons.join("; ");
  }, options);
}

/** Undefined once connected; else why not, in a few words (the system error code when there is one). */
function tryConnect(endpoint: Endpoint, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.host, port: endpoint.port });
    const done = (reason: string | undefined): void => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${(timeoutMs / 1000).toFixed(1)} s`));
    socket.once("connect", () => done(undefined));
    socket.once("error", (err: NodeJS.ErrnoException) => done(describeSocketError(err)));
  });
}

/** `ECONNREFUSED (connection refused)`: the code a person can search for, and what it means. */
export function describeSocketError(err: NodeJS.ErrnoException): string {
  const meaning: Record<string, string> = {
    ECONNREFUSED: "connection refused: nothing listens there",
    ENOTFOUND: "no such host name",
    EAI_AGAIN: "the host name could not be resolved right now",
    EHOSTUNREACH: "host unreachable",
    ENETUNREACH: "network unreachable",
    ETIMEDOUT: "timed out",
    ECONNRESET: "connection reset",
  };
  return err.code && meaning[err.code] ? `${err.code} (${meaning[err.code]})` : err.message;
}

/** Where a process listens, for {@link listenError}. */
export interface ListenTarget {
  /** The command, as the message starts: `offload-worker`. */
  readonly process: string;
  readonly host: string;
  readonly port: number;
  /** The setting(s) that choose the port: `OFFLOAD_WORKER_PORT / --port`. */
  readonly portSetting: string;
  /** The setting that chooses the address. */
  readonly hostSetting: string;
}

/**
 * A {@link ConfigError} saying which setting to change when `listen()` failed
 * for a reason of configuration (port taken, privileged port, no such
 * address); undefined for anything else.
 */
export function listenError(err: unknown, target: ListenTarget): ConfigError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const { process: p, port, host } = target;
  if (code === "EADDRINUSE") {
    return new ConfigError(`${p}: port ${port} (${target.portSetting}) is in use by another process; pick another port, or 0 for any free port`);
  }
  if (code === "EACCES") {
    return new ConfigError(`${p}: not allowed to listen on port ${port} (${target.portSetting}): ports below 1024 need privileges; pick a port above 1023`);
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new ConfigError(`${p}: cannot listen on address ${host} (${target.hostSetting}): no such address on this machine; use 0.0.0.0 for every address`);
  }
  return undefined;
}
