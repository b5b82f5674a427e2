import { parseArgs } from "node:util";
import { z } from "zod";
import { ConfigError, ServeEnvSchema, TaskNameSchema, parseEnv, port, startWaitSeconds } from "@offload/sdk/internal";

/** Port of the probes when none is set; see {@link WorkerEnvSchema}'s `OFFLOAD_WORKER_PORT`. */
export const DEFAULT_WORKER_PORT = 8081;

/** What `offload-worker` reads from the environment (serve()'s variables and its own); each flag of {@link FLAGS} overrides its variable. */
export const WorkerEnvSchema = ServeEnvSchema.extend({
  /** The task module: a path to an ES module (or CommonJS file) relative to the working directory. Required. */
  OFFLOAD_MODULE: z.string({ error: "required: the module of tasks to serve (--module PATH or OFFLOAD_MODULE)" }).min(1),
  /** Comma-separated task names to serve. @defaultValue every task the module exports */
  OFFLOAD_TASKS: z
    .string()
    .optional()
    .transform((s) => (s === undefined ? undefined : s.split(",").map((t) => t.trim()).filter(Boolean)))
    .pipe(z.array(TaskNameSchema).min(1, "name at least one task, or leave it unset for all").optional()),
  /** Runs in flight per process. @defaultValue 4 */
  OFFLOAD_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(4),
  /** Seconds SIGTERM waits for runs in flight before abandoning them. @defaultValue 30 */
  OFFLOAD_DRAIN_SECONDS: z.coerce.number().min(0).default(30),
  /**
   * Port of /healthz, /readyz and /metrics (0 picks a free one). Unset: 8081, or any free port when 8081 is
   * taken, so that a second worker beside `npm run dev` starts; a port set explicitly (as in a pod) must be free.
   */
  OFFLOAD_WORKER_PORT: port.optional(),
  /** Address the HTTP server binds. @defaultValue 0.0.0.0 */
  OFFLOAD_WORKER_HOST: z.string().min(1).default("0.0.0.0"),
  /** Seconds to wait at start for NATS to accept connections before giving up. @defaultValue 30 */
  OFFLOAD_START_WAIT_SECONDS: startWaitSeconds,
  /**
   * This process's id in run records and heartbeats. In a TaskWorker's pod the controller sets it to the pod's name
   * (Downward API `metadata.name`): that is how the autoscaler tells which pods have runs in flight before a
   * scale-down, so keep it so if you build pods by hand. @defaultValue `<hostname>-<pid>-<random>`
   */
  OFFLOAD_WORKER_ID: z.string().min(1).max(256).optional(),
});
export type WorkerConfig = z.infer<typeof WorkerEnvSchema>;

/** Command-line flags and the variable each one overrides. */
export const FLAGS = {
  module: { env: "OFFLOAD_MODULE", short: "m", help: "module of tasks to serve, relative to the working directory" },
  tasks: { env: "OFFLOAD_TASKS", short: "t", help: "comma-separated task names to serve (default: all the module exports)" },
  concurrency: { env: "OFFLOAD_CONCURRENCY", short: "c", help: "runs in flight in this process (default 4)" },
  "drain-seconds": { env: "OFFLOAD_DRAIN_SECONDS", help: "seconds a SIGTERM waits for runs in flight (default 30)" },
  port: { env: "OFFLOAD_WORKER_PORT", short: "p", help: "port of /healthz, /readyz, /metrics (default 8081, or a free one if 8081 is taken)" },
  "nats-url": { env: "OFFLOAD_NATS_URL", help: "NATS servers, comma-separated (default nats://127.0.0.1:4222)" },
} as const;

export const HELP = `Usage: offload-worker --module PATH [--tasks a,b] [--concurrency N]

Serves the tasks a module exports: pulls their runs from NATS JetStream and
runs them, with /healthz, /readyz and /metrics over HTTP. SIGTERM or SIGINT
stops pulling and lets runs in flight finish (up to the drain time), then exits 0.

Options (each overrides the environment variable shown):
${Object.entries(FLAGS)
  .map(([flag, f]) => `  ${"short" in f ? `-${f.short}, ` : "    "}--${(flag + " VALUE").padEnd(22)} ${f.env}: ${f.help}`)
  .join("\n")}
  -h, --help                     show this help

Other environment variables:
  OFFLOAD_WORKER_HOST            address the HTTP server binds (default 0.0.0.0)
  OFFLOAD_START_WAIT_SECONDS     seconds to wait at start for NATS to accept connections (default 30)
  OFFLOAD_ACK_WAIT_SECONDS       seconds before an unacked run goes to another worker (default 30)
  OFFLOAD_LOG_LEVEL              fatal|error|warn|info|debug|trace|silent (default info)
  OFFLOAD_WORKER_ID              this process's id in run records; a TaskWorker pod's name (default <hostname>-<pid>-<random>)
  OFFLOAD_MAX_DELIVER            deliveries of a task message before it is given up on (default 10; -1: no limit)
  OFFLOAD_RESULT_INLINE_LIMIT    bytes above which a result goes to the object store (default 262144)
  OFFLOAD_RUN_LOG_LEVEL          lowest level of ctx.log lines kept with the run (default info)
  OFFLOAD_RUNNING_EVENT_DELAY_MS ms a run runs before RUNNING is sent; shorter runs send only their outcome (default 100; 0: at once)
  OFFLOAD_BATCH_EVENTS           send events ready at once as one message (default true; false for a run API older than batches)

Traces (OpenTelemetry; off unless asked for): OTEL_TRACES_EXPORTER=otlp, or
OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) set, exports each run's
"offload.run <task>" span over OTLP/HTTP (JSON); OTEL_SERVICE_NAME (default
offload-worker), OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS and
OTEL_BSP_* apply as in every OpenTelemetry SDK; OTEL_SDK_DISABLED=true wins.

Exit codes: 0 after a clean stop; 1 when NATS did not accept connections
within OFFLOAD_START_WAIT_SECONDS, or on a failure at run time; 2 on bad
configuration (a bad value, a module without tasks, a port in use).
`;

/** The parsed command line: `help`, or the worker's configuration. */
export type Command = { help: true } | { help: false; config: WorkerConfig };

/**
 * Reads flags and environment, validated once. Throws a `ConfigError` naming
 * each bad variable (and its flag) with what is wrong.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Command {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([flag, f]) => [flag, { type: "string" as const, ...("short" in f ? { short: f.short } : {}) }]),
    );
    values = parseArgs({ args: [...argv], options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`offload-worker: ${(err as Error).message}`);
  }
  if (values.help) return { help: true };

  // Flags win over variables.
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [flag, f] of Object.entries(FLAGS)) {
    const v = values[flag];
    if (typeof v === "string") merged[f.env] = v;
  }
  const flagOf = new Map<string, string>(Object.entries(FLAGS).map(([flag, f]) => [f.env, flag]));
  const config = parseEnv(WorkerEnvSchema, merged, "offload-worker", (v) => (flagOf.has(v) ? `${v} (--${flagOf.get(v)})` : v));
  return { help: false, config };
}
