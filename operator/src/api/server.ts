import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ERROR_CODES, ErrorBodySchema, JsonSchema, RunSchema, natsConnectOptions, redactUrl, type Run } from "@offload/sdk/internal";
import type { KubeConfig } from "@kubernetes/client-node";
import fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import { pino, type Logger } from "pino";
import type { ApiConfig } from "../config/api.js";
import { startMaxDeliveriesWatch } from "../dispatch/advisories.js";
import { NatsLink } from "../dispatch/connection.js";
import { startEventMaterializer } from "../dispatch/events.js";
import { WorkerDirectory } from "../dispatch/heartbeats.js";
import { ensureBuckets, ensureStreams } from "../dispatch/streams.js";
import { startRetention } from "../dispatch/retention.js";
import { OutboxDispatcher } from "../dispatch/outbox.js";
import { startSweeper } from "../dispatch/sweeper.js";
import { Admission } from "../dispatch/admission.js";
import { cancelRun } from "../dispatch/lifecycle.js";
import { startScheduler } from "../dispatch/scheduler.js";
import { submitRuns } from "../dispatch/submit.js";
import { openDb, type Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import { openTaskRegistry } from "../registry/registry.js";
import { subscribeRegistrations } from "../registry/subscription.js";
import { createAccess, type Access } from "./auth/index.js";
import { installJsonBodies } from "./body.js";
import { clientErrorHandler, frameworkErrors, installErrorHandling, MAX_PARAM_LENGTH } from "./errors.js";
import { ApiMetrics } from "./metrics.js";
import { installRateLimit } from "./rate-limit.js";
import { RunNotifier } from "./notifier.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerRunActionRoutes, type RunActionDeps } from "./routes/run-actions.js";
import { registerRunEventRoutes } from "./routes/run-events.js";
import { registerRunLogRoutes } from "./routes/run-logs.js";
import { registerRunRoutes, type RunRoutesDeps } from "./routes/runs.js";
import { registerScheduleRoutes } from "./routes/schedules.js";
import { registerOverviewRoutes } from "./routes/overview.js";
import { registerDashboard } from "./ui.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { TaskLoadWatch } from "./task-load.js";
import { listTasks } from "./task-list.js";

/** A running run API. */
export interface RunningApi {
  /** Base URL to call it on (loopback when it listens on every address). */
  readonly url: string;
  readonly log: Logger;
  /**
   * Graceful stop: stops accepting, lets requests in flight finish (long-polls
   * answer at once), stops the sweeper, the scheduler, retention and the event consumer,
   * drains NATS and closes the database. Safe to call twice.
   */
  close(): Promise<void>;
}

/** Options of {@link startApi} beyond the configuration. */
export interface StartApiOptions {
  /** Logger to use. @defaultValue a pino logger at `config.logLevel` on stdout */
  logger?: Logger;
  /**
   * The cluster TokenReviews and SubjectAccessReviews go to with `OFFLOAD_AUTH=kubernetes`.
   * @defaultValue the kubeconfig the controller would use (KUBECONFIG, ~/.kube/config, in-cluster)
   */
  kubeConfig?: KubeConfig;
}

/**
 * Starts the run API: applies migrations, ensures the NATS streams, buckets
 * and the events consumer, starts the event materializer, the sweeper, the
 * scheduler (cron schedules), retention (deleting finished runs past it) and
 * the listeners (max-deliveries advisories, worker heartbeats), and listens for HTTP. Rejects (having undone what it started) if any step fails.
 */
export async function startApi(config: Readonly<ApiConfig>, options: StartApiOptions = {}): Promise<RunningApi> {
  const log = options.logger ?? pino({ name: "offload-api", level: config.logLevel });
  const undo: (() => Promise<unknown>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const u of undo.reverse()) await u().catch((err: unknown) => log.warn({ err }, "error while stopping"));
    undo.length = 0;
  };
  try {
    const db: Db = await openDb(config.databaseUrl, config.dataDir, (err) => log.warn({ err }, "database connection error"));
    undo.push(() => db.close());
    const applied = await migrate(db);
    log.info({ database: db.kind, applied }, applied.length ? "applied migrations" : "schema up to date");
    // Read before anything is submitted: the submit path checks parameters against it.
    const registry = await openTaskRegistry(db, log);
    const registryReloads = registry.reloadEvery(config.registryReloadMs ?? 5000);
    undo.push(() => registryReloads.stop());

    const nc: NatsConnection = await connect(natsConnectOptions(config.natsServers, "offload-api"));
    undo.push(() => nc.drain());
    const link = new NatsLink(nc, log);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, log);
    const { cancellations, results } = await ensureBuckets(js, log);
    const registrations = subscribeRegistrations(nc, db, registry, log);
    undo.push(() => registrations.stop());

    const notifier = new RunNotifier();
    const metrics = new ApiMetrics();
    const notify = (run: Run): void => notifier.notify(run);
    // Runs of limited tasks wait in the run API; admission dispatches them. Every change this replica records
    // (an outcome materialized, a cancel, a max-deliveries failure) may free a slot.
    const admission = new Admission(db, { nc, link }, registry, log, {
      intervalMs: config.admissionIntervalMs,
      onChanged: notify,
      onPass: (task, outcome) => metrics.admissionPass(task, outcome),
    });
    const unwatchOutcomes = notifier.watchStates((run) => admission.changed(run));
    await admission.start();
    undo.push(async () => (unwatchOutcomes(), await admission.stop()));
    const materializer = await startEventMaterializer(
      db,
      js,
      { onApplied: (change) => notifier.changed(change), onHandled: (event, applied) => metrics.eventHandled(event, applied) },
      log,
    );
    undo.push(() => materializer.stop());
    const sweeper = startSweeper(
      db,
      { nc, link },
      {
        republishAfterSeconds: config.republishAfterSeconds,
        intervalMs: config.sweepIntervalMs,
        onDispatched: notify,
        limited: () => admission.limited(),
        onHeld: (runs) => admission.held(runs),
      },
      log,
    );
    undo.push(() => sweeper.stop());
    const dispatcher = new OutboxDispatcher(db, { nc, link }, log);
    // Before NATS drains and the database closes: the publishes under way finish and their outbox rows go.
    undo.push(() => dispatcher.stop());
    const retention = startRetention(
      db,
      { results, jsm },
      {
        runRetentionSeconds: config.runRetentionSeconds,
        failedRunRetentionSeconds: config.failedRunRetentionSeconds,
        intervalMs: config.retentionIntervalMs,
        onDeleted: (state, count) => metrics.runsDeleted(state, count),
      },
      log,
    );
    undo.push(() => retention.stop());
    const advisories = startMaxDeliveriesWatch(nc, jsm, db, notify, log);
    undo.push(() => advisories.stop());
    const workers = new WorkerDirectory();
    const heartbeats = workers.listen(nc);
    undo.push(async () => heartbeats.stop());
    const taskLoad = new TaskLoadWatch(() => listTasks({ db, jsm, workers, registry }));
    const taskLoadWakes = taskLoad.listen(nc);
    const unwatchWorkers = workers.onLoadChange(() => taskLoad.poke());
    undo.push(async () => (unwatchWorkers(), taskLoadWakes.stop()));

    // Loaded only when needed: @kubernetes/client-node takes a second or more to import.
    const kc =
      config.auth.mode === "kubernetes"
        ? (options.kubeConfig ?? (await import("../controller/cluster.js")).loadCluster(process.env, undefined, undefined, "offload-api").kc)
        : undefined;
    const access = await createAccess(config, kc, log);
    const closing = new AbortController();
    const app = await buildApp(config, access, log);
    metrics.install(app);
    registerHealthRoutes(app, { db, nc, link, log });
    const runDeps: RunRoutesDeps = {
      db,
      dispatcher,
      log,
      testFault: config.testFault,
      runRetentionSeconds: config.runRetentionSeconds,
      notifier,
      resultRecheckMs: config.resultRecheckMs,
      closing: closing.signal,
      results,
      metrics,
      access,
      registry,
      admission,
    };
    registerRunRoutes(app, runDeps);
    const actionDeps: RunActionDeps = { db, nc, link, cancellations, notifier, log, access, admission };
    registerRunActionRoutes(app, actionDeps);
    // Scheduled runs take the same paths as POST /v1/runs and its cancel, so limits, dispatch and events apply alike.
    const scheduler = startScheduler(
      {
        db,
        submit: (bodies) => submitRuns(runDeps, bodies),
        cancel: (id) => cancelRun(actionDeps, id),
        onFired: (run) => metrics.runCreated(run.task),
        onCancelled: notify,
        onTimes: (task, outcome, count) => metrics.scheduleTimes(task, outcome, count),
      },
      { maxSleepMs: config.schedulerIntervalMs },
      log.child({ component: "scheduler" }),
    );
    undo.push(() => scheduler.stop());
    registerScheduleRoutes(app, { db, access, registry, changed: () => scheduler.poke() });
    registerRunLogRoutes(app, { db, js, jsm, access });
    registerRunEventRoutes(app, { db, notifier, recheckMs: config.resultRecheckMs, closing: closing.signal, access });
    registerTaskRoutes(app, { db, jsm, workers, registry, watch: taskLoad, closing: closing.signal });
    registerOverviewRoutes(app, { db, jsm, workers, registry, notifier, access, closing: closing.signal });
    await registerDashboard(app);
    metrics.exposeTasks(() => listTasks({ db, jsm, workers, registry }));
    // Runs first when unwinding: requests in flight still need the database and NATS.
    undo.push(async () => {
      closing.abort();
      await app.close();
    });
    await app.listen({ port: config.port, host: config.host });

    const addr = app.server.address();
    const port = typeof addr === "object" && addr ? addr.port : config.port;
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    log.info({ url, database: db.kind, nats: config.natsServers.map(redactUrl) }, "offload-api ready");

    let closed: Promise<void> | undefined;
    return {
      url,
      log,
      close: () => (closed ??= unwind().then(() => log.info("offload-api stopped"))),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** The fastify instance with validation, serialization, OpenAPI at /docs, auth and error handling; no routes yet. */
async function buildApp(config: Readonly<ApiConfig>, access: Access, log: Logger): Promise<FastifyInstance> {
  const app = fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    // Long-polls must not hold up shutdown; they are woken by `closing` and idle sockets are closed.
    forceCloseConnections: "idle",
    return503OnClosing: true,
    // Longer ids than any run has still reach the route, which answers 404 OFFLOAD_RUN_NOT_FOUND for them.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    clientErrorHandler,
  });
  installJsonBodies(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Named once, shared by reference in the OpenAPI document instead of inlined (or called "schema0").
  for (const [schema, id] of [[JsonSchema, "Json"], [RunSchema, "Run"], [ErrorBodySchema, "ErrorBody"]] as const) {
    if (!z.globalRegistry.has(schema)) z.globalRegistry.add(schema, { id });
  }
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Offload run API",
        version: "v1",
        description:
          "Records and dispatches background task runs. Every error answer carries a stable `code`:\n\n" +
          Object.entries(ERROR_CODES)
            .map(([code, e]) => `- \`${code}\` (${e.status}): ${e.description}`)
            .join("\n"),
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: access.mode === "none" ? [] : [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  access.install(app, config.token);
  await installRateLimit(app, config.rateLimit);
  installErrorHandling(app);
  return app;
}
