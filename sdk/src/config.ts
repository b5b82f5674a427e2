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
