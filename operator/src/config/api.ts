import { z } from "zod";
import { LOG_LEVELS, natsUrls, parseEnv, port, positive, startWaitSeconds, type LogLevel } from "@offload/sdk/internal";

export { LOG_LEVELS, type LogLevel };

/** Values of `OFFLOAD_TEST_FAULT`: fault injection for system tests only. */
export const TEST_FAULTS = ["exit-after-record"] as const;

export type TestFault = (typeof TEST_FAULTS)[number];

/**
 * How the run API knows its callers. `kubernetes`: each caller's ServiceAccount token, checked with a TokenReview,
 * and its rights per namespace with a SubjectAccessReview (the chart's default). `token`: one shared
 * `OFFLOAD_API_TOKEN` (outside a cluster). `none`: anyone may do anything (local development only).
 */
export const AUTH_MODES = ["kubernetes", "token", "none"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** The audience a ServiceAccount token must be issued for when OFFLOAD_AUTH_AUDIENCE is unset. */
export const DEFAULT_AUTH_AUDIENCE = "offload";

/** The environment of `offload-api`, validated once at start. */
export const ApiEnvSchema = z.object({
  OFFLOAD_API_PORT: port.default(8080),
  OFFLOAD_API_HOST: z.string().min(1).default("0.0.0.0"),
  OFFLOAD_NATS_URL: natsUrls.default(["nats://127.0.0.1:4222"]),
  OFFLOAD_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, "must be a postgres:// URL, e.g. postgres://user:pass@host:5432/offload")
    .optional(),
  OFFLOAD_DATA_DIR: z.string().min(1).default(".offload"),
  OFFLOAD_API_TOKEN: z.string().min(1).optional(),
  OFFLOAD_API_BODY_LIMIT: z.coerce.number().int().min(1024, "must be at least 1024 bytes").default(1024 * 1024),
  OFFLOAD_LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  OFFLOAD_START_WAIT_SECONDS: startWaitSeconds,
  OFFLOAD_REPUBLISH_AFTER_SECONDS: z.coerce.number().min(0).default(5),
  OFFLOAD_RUN_RETENTION_DAYS: z.coerce.number().min(0).default(30),
  OFFLOAD_FAILED_RUN_RETENTION_DAYS: z.coerce.number().min(0).optional(),
  OFFLOAD_RETENTION_INTERVAL_SECONDS: positive.default(300),
  OFFLOAD_TEST_FAULT: z.enum(TEST_FAULTS).optional(),
  OFFLOAD_AUTH: z.enum(AUTH_MODES, { error: `must be one of ${AUTH_MODES.join(", ")}` }).optional(),
  OFFLOAD_AUTH_AUDIENCE: z.string().min(1).default(DEFAULT_AUTH_AUDIENCE),
  OFFLOAD_AUTH_CACHE_SECONDS: z.coerce.number().min(0).max(300, "must be at most 300 (a revoked right must not outlive this long)").default(10),
  OFFLOAD_AUTH_CACHE_ENTRIES: z.coerce.number().int().min(1).default(10_000),
  OFFLOAD_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).default(0),
  OFFLOAD_RATE_LIMIT_WINDOW_SECONDS: positive.default(1),
  OFFLOAD_REGISTRY_RELOAD_SECONDS: positive.max(3600, "must be at most 3600 (an hour)").default(5),
  OFFLOAD_SCHEDULER_INTERVAL_MS: z.coerce.number().int().min(10, "must be at least 10 (ms)").max(60_000, "must be at most 60000 (ms)").default(1000),
  OFFLOAD_ADMISSION_INTERVAL_MS: z.coerce.number().int().min(50, "must be at least 50 (ms)").max(60_000, "must be at most 60000 (ms)").default(1000),
}).superRefine((e, ctx) => {
  if (e.OFFLOAD_AUTH === "token" && !e.OFFLOAD_API_TOKEN) {
    ctx.addIssue({ code: "custom", path: ["OFFLOAD_AUTH"], message: "is token, but OFFLOAD_API_TOKEN is unset; set it to the shared token callers send" });
  }
});
const DAY_SECONDS = 24 * 60 * 60;
type ApiEnvName = keyof z.infer<typeof ApiEnvSchema>;
type ApiEnv = z.infer<typeof ApiEnvSchema>;

/**
 * What `--help` prints for each variable. Keyed by the schema's names, so a
 * variable added to the schema without a line here does not compile.
 */
export const API_ENV_DOC: Record<ApiEnvName, string> = {
  OFFLOAD_API_PORT: "TCP port to listen on. Default 8080.",
  OFFLOAD_API_HOST: "Address to listen on. Default 0.0.0.0.",
  OFFLOAD_NATS_URL: "NATS server(s) with JetStream, comma-separated. Default nats://127.0.0.1:4222.",
  OFFLOAD_DATABASE_URL: "PostgreSQL URL for run records. Unset: an embedded PGlite database in OFFLOAD_DATA_DIR (one replica only).",
  OFFLOAD_DATA_DIR: "Folder of the embedded database when OFFLOAD_DATABASE_URL is unset. Default .offload (in the working directory).",
  OFFLOAD_API_TOKEN: "The shared token of OFFLOAD_AUTH=token: every call except /healthz, /readyz and /metrics needs `Authorization: Bearer <token>`.",
  OFFLOAD_API_BODY_LIMIT: "Largest request body in bytes; larger ones get 413. Default 1048576 (1 MiB).",
  OFFLOAD_LOG_LEVEL: `Log level: ${LOG_LEVELS.join(", ")}. Default info.`,
  OFFLOAD_START_WAIT_SECONDS:
    "Seconds offload-api waits at start for PostgreSQL and NATS to accept connections (a progress line every 5 s) before it exits 1 naming what it tried. Default 30.",
  OFFLOAD_REPUBLISH_AFTER_SECONDS:
    "How long a run recorded but not yet confirmed published (the run API stopped or NATS was away in between) waits before the sweeper publishes it. Default 5.",
  OFFLOAD_RUN_RETENTION_DAYS:
    "Finished runs (COMPLETED, FAILED, CANCELLED) are deleted, with their stored results, this many days after they finished; " +
    "fractions allowed; 0 keeps them forever. Older completed runs are no longer cache hits. Default 30.",
  OFFLOAD_FAILED_RUN_RETENTION_DAYS:
    "Overrides OFFLOAD_RUN_RETENTION_DAYS for FAILED runs (often worth keeping longer); 0 keeps them forever. Default: OFFLOAD_RUN_RETENTION_DAYS.",
  OFFLOAD_RETENTION_INTERVAL_SECONDS: "Pause between two passes deleting expired runs. Default 300.",
  OFFLOAD_AUTH:
    "How callers are known. kubernetes: the caller's ServiceAccount token (checked with a TokenReview) and its rights per namespace " +
    "(a SubjectAccessReview on resource runs of group offload.dev: create, get, list, delete, update); needs a kubeconfig as the " +
    "controller finds it (KUBECONFIG, ~/.kube/config, in-cluster) and, in a cluster, the ClusterRole system:auth-delegator. " +
    "token: the shared OFFLOAD_API_TOKEN. none: no checks at all, for local development only. " +
    "Default: token when OFFLOAD_API_TOKEN is set, else none (with a warning at start).",
  OFFLOAD_AUTH_AUDIENCE: `With OFFLOAD_AUTH=kubernetes, the audience callers' tokens must be issued for (the projected volume's audience). Default ${DEFAULT_AUTH_AUDIENCE}.`,
  OFFLOAD_AUTH_CACHE_SECONDS:
    "With OFFLOAD_AUTH=kubernetes, how long a TokenReview or SubjectAccessReview verdict (allowed or not) is reused; " +
    "never past the token's expiry; 0 asks every time. At most 300. Default 10.",
  OFFLOAD_AUTH_CACHE_ENTRIES: "With OFFLOAD_AUTH=kubernetes, most verdicts kept (each cache: tokens, and access decisions); the least recently used go first. Default 10000.",
  OFFLOAD_RATE_LIMIT_PER_SECOND:
    "Requests per second one caller may make (the authenticated identity, else the client address), counted per replica; " +
    "more get 429 OFFLOAD_RATE_LIMITED with Retry-After. /healthz, /readyz and /metrics are not limited. 0 (the default) turns it off.",
  OFFLOAD_RATE_LIMIT_WINDOW_SECONDS:
    "The window the limit is counted over: a caller may send OFFLOAD_RATE_LIMIT_PER_SECOND × this many requests per window, in any burst. Default 1.",
  OFFLOAD_REGISTRY_RELOAD_SECONDS:
    "How often each replica re-reads the task definitions workers registered. A registration reaches every replica connected to NATS at once; " +
    "this is how one that missed it (cut off from NATS then) or a definition deleted from the database catches up. Default 5.",
  OFFLOAD_SCHEDULER_INTERVAL_MS:
    "The longest (ms) the scheduler sleeps between two looks at the schedules: it wakes at the next scheduled time, but at least this often, " +
    "so that a schedule created or changed through another replica is seen within it. Default 1000.",
  OFFLOAD_ADMISSION_INTERVAL_MS:
    "How often (ms) each limited task (one with a concurrency or rate limit) that has runs waiting gets an admission pass as a safety net " +
    "(one with none, every 10 times this); passes also run at once after a submit, an outcome or a cancel on this replica, and when a rate " +
    "window frees a slot. A slot freed on another replica is seen within this. Default 1000.",
  OFFLOAD_TEST_FAULT: `Test only, never in production. ${TEST_FAULTS.join(", ")}: exit(1) right after a run is recorded, before it is published.`,
};

/** The run API's configuration, compiled from the environment (or given to `startApi` directly). */
export interface ApiConfig {
  /** TCP port; 0 picks a free one. @defaultValue 8080 */
  port: number;
  /** @defaultValue "0.0.0.0" */
  host: string;
  /** NATS servers. @defaultValue ["nats://127.0.0.1:4222"] */
  natsServers: string[];
  /** PostgreSQL URL; undefined uses embedded PGlite in `dataDir`. */
  databaseUrl: string | undefined;
  /** Folder of the embedded database. @defaultValue ".offload" */
  dataDir: string;
  /** Bearer token of the `token` mode (required on every call but the probes). */
  token: string | undefined;
  /** How callers are authenticated and authorized. */
  auth: AuthConfig;
  /** Per-caller rate limit; undefined: none. */
  rateLimit: RateLimitConfig | undefined;
  /** Largest body in bytes. @defaultValue 1048576 */
  bodyLimit: number;
  /** @defaultValue "info" */
  logLevel: LogLevel;
  /** Seconds `offload-api` waits at start for PostgreSQL and NATS to accept connections (not used by `startApi` itself). @defaultValue 30 */
  startWaitSeconds: number;
  /** Age of a run recorded and not confirmed published (an outbox row, a due SCHEDULED run) before the sweeper publishes it. @defaultValue 5 */
  republishAfterSeconds: number;
  /**
   * Seconds after `finished_at` that COMPLETED and CANCELLED runs are deleted (with their stored results);
   * 0 keeps them forever. Completed runs older than this are no cache hits either. @defaultValue 30 days
   */
  runRetentionSeconds: number;
  /** The same for FAILED runs. @defaultValue `runRetentionSeconds` */
  failedRunRetentionSeconds: number;
  /** Pause between retention passes, in ms. @defaultValue 300000 */
  retentionIntervalMs: number;
  /** How often the sweeper looks for due runs (scheduled ones and retries), in ms; a due run waits at most about this long. @defaultValue 250 */
  sweepIntervalMs: number;
  /** How often a result long-poll re-reads the database (for events materialized by another replica), in ms. @defaultValue 1000 */
  resultRecheckMs: number;
  /** Fault injection for tests. */
  testFault: TestFault | undefined;
  /** How often the registered task definitions are re-read from the database, in ms. @defaultValue 5000 */
  registryReloadMs?: number;
  /** The longest the scheduler sleeps between two looks at the schedules, in ms (it wakes at the next due time sooner). @defaultValue 1000 */
  schedulerIntervalMs?: number;
  /** How often every limited task gets an admission pass as the safety net, in ms. @defaultValue 1000 */
  admissionIntervalMs?: number;
}

/** How the run API knows its callers (see {@link AUTH_MODES}). */
export interface AuthConfig {
  mode: AuthMode;
  /** The audience a ServiceAccount token must carry (`kubernetes`). @defaultValue "offload" */
  audience: string;
  /** How long a review's verdict is reused, in ms (`kubernetes`); 0: not at all. @defaultValue 10000 */
  cacheTtlMs: number;
  /** Most verdicts kept per cache (`kubernetes`). @defaultValue 10000 */
  cacheMaxEntries: number;
}

/** Requests one caller may make per window. */
export interface RateLimitConfig {
  max: number;
  windowMs: number;
}

/** The mode asked for, else `token` when a shared token is set, else `none`: today's behaviour, and `npm run dev`'s. */
function authOf(e: ApiEnv): AuthConfig {
  return {
    mode: e.OFFLOAD_AUTH ?? (e.OFFLOAD_API_TOKEN ? "token" : "none"),
    audience: e.OFFLOAD_AUTH_AUDIENCE,
    cacheTtlMs: e.OFFLOAD_AUTH_CACHE_SECONDS * 1000,
    cacheMaxEntries: e.OFFLOAD_AUTH_CACHE_ENTRIES,
  };
}

/** Reads and checks the environment; throws a `ConfigError` naming every bad variable. */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): Readonly<ApiConfig> {
  const e = parseEnv(ApiEnvSchema, env, "offload-api");
  return Object.freeze({
    port: e.OFFLOAD_API_PORT,
    host: e.OFFLOAD_API_HOST,
    natsServers: e.OFFLOAD_NATS_URL,
    databaseUrl: e.OFFLOAD_DATABASE_URL,
    dataDir: e.OFFLOAD_DATA_DIR,
    token: e.OFFLOAD_API_TOKEN,
    auth: authOf(e),
    rateLimit:
      e.OFFLOAD_RATE_LIMIT_PER_SECOND > 0
        ? {
            // At least one request per window, however small the rate.
            max: Math.max(1, Math.floor(e.OFFLOAD_RATE_LIMIT_PER_SECOND * e.OFFLOAD_RATE_LIMIT_WINDOW_SECONDS)),
            windowMs: e.OFFLOAD_RATE_LIMIT_WINDOW_SECONDS * 1000,
          }
        : undefined,
    bodyLimit: e.OFFLOAD_API_BODY_LIMIT,
    logLevel: e.OFFLOAD_LOG_LEVEL,
    startWaitSeconds: e.OFFLOAD_START_WAIT_SECONDS,
    republishAfterSeconds: e.OFFLOAD_REPUBLISH_AFTER_SECONDS,
    runRetentionSeconds: e.OFFLOAD_RUN_RETENTION_DAYS * DAY_SECONDS,
    failedRunRetentionSeconds: (e.OFFLOAD_FAILED_RUN_RETENTION_DAYS ?? e.OFFLOAD_RUN_RETENTION_DAYS) * DAY_SECONDS,
    retentionIntervalMs: e.OFFLOAD_RETENTION_INTERVAL_SECONDS * 1000,
    sweepIntervalMs: 250,
    resultRecheckMs: 1000,
    testFault: e.OFFLOAD_TEST_FAULT,
    registryReloadMs: e.OFFLOAD_REGISTRY_RELOAD_SECONDS * 1000,
    schedulerIntervalMs: e.OFFLOAD_SCHEDULER_INTERVAL_MS,
    admissionIntervalMs: e.OFFLOAD_ADMISSION_INTERVAL_MS,
  });
}
