import { z } from "zod";
import { ConfigError } from "./errors.js";

/** The levels of every Offload logger (pino's). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The variables of `env` that are set: an empty one (`FOO=`, as Helm and
 * shells often render an unset value) counts as unset, so its default applies.
 */
export function setVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

/**
 * Parses `env` (empty variables counting as unset) with `schema` and throws a
 * {@link ConfigError} that names every bad variable and what is wrong with it.
 * `label` may add to a variable's name in the message (e.g. the flag that sets
 * it). Used by every Offload process at start.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
  what = "Offload",
  label: (variable: string) => string = (v) => v,
): z.infer<S> {
  const vars = setVariables(env);
  const parsed = schema.safeParse(vars);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const key = i.path.length ? String(i.path[0]) : undefined;
    return `  ${key ? label(key) : "(environment)"}: ${explainIssue(i, key ? vars[key] : undefined)}`;
  });
  throw new ConfigError(`${what}: invalid configuration:\n${lines.join("\n")}`);
}

/**
 * One configuration problem in words a person can act on: zod's own say
 * "expected number, received NaN" for `OFFLOAD_CONCURRENCY=four`. Only
 * numeric values are echoed back, so a secret never lands in a log.
 */
export function explainIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === "invalid_type" && issue.expected === "number") return `must be a number, got ${JSON.stringify(raw)}`;
  if (issue.code === "invalid_type" && issue.expected === "int") return `must be a whole number, got ${JSON.stringify(raw)}`;
  return issue.message;
}

/** An http(s) URL, as an env variable. */
export const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });
/** A nats URL (or a comma-separated list of them). */
export const natsUrls = z
  .string()
  .min(1)
  .refine((s) => s.split(",").every((u) => /^(nats|tls|wss?):\/\/[^\s]+$/.test(u.trim()) || /^[\w.-]+:\d+$/.test(u.trim())), {
    message: "must be a nats:// URL (or several, comma-separated), e.g. nats://127.0.0.1:4222",
  })
  .transform((s) => s.split(",").map((u) => u.trim()));
/** A TCP port number, as an env variable. */
export const port = z.coerce.number().int().min(0).max(65535);
/** A positive number given in an env variable. */
export const positive = z.coerce.number().positive();

/** What the SDK's client reads from the environment. */
export const ClientEnvSchema = z.object({
  OFFLOAD_API_URL: httpUrl.default("http://127.0.0.1:8080"),
  OFFLOAD_API_TOKEN: z.string().min(1).optional(),
  /** A file holding the token (a projected ServiceAccount token), re-read when it is rotated; OFFLOAD_API_TOKEN wins. */
  OFFLOAD_TOKEN_FILE: z.string().min(1).optional(),
});
export type ClientEnv = z.infer<typeof ClientEnvSchema>;

/**
 * `url` with its password replaced by `***`, for logs: `nats://offload:***@nats:4222`.
 * A user without a password (`nats://TOKEN@host`, a token) is masked whole. Anything
 * without `scheme://…@` (e.g. `host:4222`) comes back unchanged.
 */
export function redactUrl(url: string): string {
  const u = splitUserinfo(url);
  if (!u) return url;
  const colon = u.info.indexOf(":");
  return `${u.scheme}${colon < 0 ? "***" : `${u.info.slice(0, colon)}:***`}@${u.host}`;
}

/** `scheme://info@host…` split at the last `@`; undefined when the URL carries no userinfo. */
function splitUserinfo(url: string): { scheme: string; info: string; host: string } | undefined {
  const m = /^([a-z][\w+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return undefined;
  const rest = m[2]!;
  const at = rest.lastIndexOf("@");
  return at < 0 ? undefined : { scheme: m[1]!, info: rest.slice(0, at), host: rest.slice(at + 1) };
}

/** NATS servers and the credentials to present, as nats.js's `connect()` takes them. */
export interface NatsServerOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * nats.js ignores credentials in a server URL, so `nats://user:pass@host:4222`
 * would connect without them: this moves them out of the URL(s) into
 * `user`/`pass` (or `token`, for `nats://TOKEN@host`), percent-decoded. Every
 * URL that carries credentials must carry the same ones (one connection
 * presents one set, also to the servers it discovers).
 */
export function natsServerOptions(urls: string | readonly string[]): NatsServerOptions {
  const list = typeof urls === "string" ? urls.split(",").map((u) => u.trim()).filter(Boolean) : [...urls];
  const servers: string[] = [];
  let creds: { user?: string; pass?: string; token?: string } | undefined;
  let credsFrom = "";
  for (const url of list) {
    const u = splitUserinfo(url);
    if (!u) {
      servers.push(url);
      continue;
    }
    servers.push(`${u.scheme}${u.host}`);
    const info = u.info;
    const colon = info.indexOf(":");
    const these = colon < 0 ? { token: decode(info) } : { user: decode(info.slice(0, colon)), pass: decode(info.slice(colon + 1)) };
    if (creds && (creds.user !== these.user || creds.pass !== these.pass || creds.token !== these.token)) {
      throw new ConfigError(`NATS URLs carry different credentials (${redactUrl(credsFrom)} and ${redactUrl(url)}): give every URL the same ones`);
    }
    creds = these;
    credsFrom = url;
  }
  return { servers, ...creds };
}

/**
 * How every Offload process connects to NATS: the servers and credentials of
 * {@link natsServerOptions}, reconnecting for as long as the process lives,
 * and without async traces. With them, nats.js builds Error objects (stack
 * traces included) for every request and JetStream publish just in case one
 * fails: in the bench that was ~18% of a busy worker's CPU and ~8% of the run
 * API's. A failed request still says what failed, only not from where.
 */
export function natsConnectOptions(urls: string | readonly string[], name: string): NatsServerOptions & { name: string; maxReconnectAttempts: number; noAsyncTraces: boolean } {
  return { ...natsServerOptions(urls), name, maxReconnectAttempts: -1, noAsyncTraces: true };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
