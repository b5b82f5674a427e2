import { z } from "zod";
import { ConfigError } from "./errors.js";

/**
 * Parses `env` with `schema` and throws a {@link ConfigError} that names every
 * bad variable and what is wrong with it. Used by every Offload process at start.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env, what = "Offload"): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(environment)"}: ${explainIssue(i, env[String(i.path[0])])}`);
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
});
export type ClientEnv = z.infer<typeof ClientEnvSchema>;

/**
 * `url` with its password replaced by `***`, for logs: `nats://offload:***@nats:4222`.
 * A user without a password (`nats://TOKEN@host`, a token) is masked whole. Anything
 * without `scheme://…@` (e.g. `host:4222`) comes back unchanged.
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][\w+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, rest] = m as unknown as [string, string, string];
  const at = rest.lastIndexOf("@");
  if (at < 0) return url;
  const info = rest.slice(0, at);
  const colon = info.indexOf(":");
  return `${scheme}${colon < 0 ? "***" : `${info.slice(0, colon)}:***`}${rest.slice(at)}`;
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
    const m = /^([a-z][\w+.-]*:\/\/)(.*)$/is.exec(url);
    const at = m ? (m[2] as string).lastIndexOf("@") : -1;
    if (!m || at < 0) {
      servers.push(url);
      continue;
    }
    const [, scheme, rest] = m as unknown as [string, string, string];
    servers.push(`${scheme}${rest.slice(at + 1)}`);
    const info = rest.slice(0, at);
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

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
