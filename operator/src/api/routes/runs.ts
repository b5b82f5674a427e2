import {
  CreateRunBodySchema,
  CreateRunsBatchBodySchema,
  CreateRunsBatchResponseSchema,
  ListRunsQuerySchema,
  ListRunsResponseSchema,
  ResultQuerySchema,
  ResultResponseSchema,
  RunSchema,
  SubmittedRunSchema,
  MAX_BATCH,
  isTerminal,
  type Run,
} from "@offload/sdk/internal";
import type { FastifyInstance, FastifyRequest, FastifySerializerCompiler } from "fastify";
import { serializerCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ObjectStore } from "@nats-io/obj";
import { readStoredResult } from "../../dispatch/results.js";
import { SubmitCoalescer } from "../../dispatch/coalesce.js";
import { submitRuns, type SubmitDeps } from "../../dispatch/submit.js";
import { decodeCursor } from "../../store/cursor.js";
import { isUuid } from "../../store/ids.js";
import type { Db } from "../../store/db.js";
import { getRun, getRunNamespace, getRunState, listRuns } from "../../store/runs.js";
import { checkSubmission, type ParameterChecking, type SubmissionVerdict } from "../../registry/submission.js";
import type { Access, RunVerb } from "../auth/index.js";
import { ApiHttpError } from "../errors.js";
import type { ApiMetrics } from "../metrics.js";
import type { RunNotifier } from "../notifier.js";
import { errorResponses } from "./schemas.js";

/** What the run routes need. */
export interface RunRoutesDeps extends SubmitDeps {
  notifier: RunNotifier;
  /** How often a long-poll re-reads the run (another replica may have recorded its end), in ms. */
  resultRecheckMs: number;
  /** Aborted at shutdown: long-polls answer at once with what they have. */
  closing: AbortSignal;
  /** Where workers put results too large for an event. */
  results: ObjectStore;
  metrics: ApiMetrics;
  /** Who may do what, in which namespace. */
  access: Access;
  /** The tasks workers registered: parameters are checked against their input schemas before anything is recorded. */
  registry: ParameterChecking;
}

/** The `:id` of the run routes. */
export const IdParams = z.object({ id: z.string().describe("The run's id.") });

/** The 404 of a run id nobody knows. */
export function notFound(id: string): ApiHttpError {
  return new ApiHttpError("OFFLOAD_RUN_NOT_FOUND", `no run has the id ${JSON.stringify(id)}`, { runId: id });
}

/**
 * 404 unless run `id` exists, and (with Kubernetes auth) 403 unless the caller may do `verb` on runs in the
 * namespace the run was delayed from. Without Kubernetes auth nobody is refused, so the run is not read here.
 */
export async function authorizeRun(deps: { db: Db; access: Access }, request: FastifyRequest, id: string, verb: RunVerb): Promise<void> {
  if (!isUuid(id)) throw notFound(id);
  if (deps.access.mode !== "kubernetes") return;
  const namespace = await getRunNamespace(deps.db, id);
  if (namespace === undefined) throw notFound(id);
  await deps.access.require(request, verb, namespace);
}

/** The submission's warnings; throws the 400 of a refused one. */
function checked(verdict: SubmissionVerdict): { warnings: string[] } {
  if (!verdict.ok) throw new ApiHttpError("OFFLOAD_INVALID_PARAMETERS", verdict.message, { issues: verdict.issues });
  return verdict;
}

/**
 * The serializer of the run routes: a 2xx answer is JSON.stringify'd as it is, the others go through zod as on every
 * other route. Why: fastify-type-provider-zod's serializer re-validates each answer against its schema (every run's
 * timestamps against a regex, its parameters through the recursive Json union), which cost the run API more than
 * recording a batch did; yet these answers are runs the store built field by field (`toStored`) from rows whose
 * values were checked against the same schema when they were written. Error bodies stay checked: they are made in
 * many places.
 */
const runSerializer: FastifySerializerCompiler<unknown> = (def) => {
  if (def.httpStatus?.startsWith("2")) return (data: unknown) => JSON.stringify(data);
  return serializerCompiler(def as Parameters<typeof serializerCompiler>[0]);
};

// What every run route may answer besides its own: no right (403) and no way to check it now (503).
export const ACCESS_ERRORS = ["OFFLOAD_FORBIDDEN", "OFFLOAD_UNAVAILABLE", "OFFLOAD_RATE_LIMITED"] as const;

/** `/v1/runs…`: record and dispatch runs, read them, await their results. */
export function registerRunRoutes(root: FastifyInstance, deps: RunRoutesDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { db } = deps;
  const singles = new SubmitCoalescer((bodies) => submitRuns(deps, bodies));

  app.post(
    "/v1/runs",
    {
      serializerCompiler: runSerializer,
      schema: {
        summary: "Record and dispatch one run",
        description:
          "Answers 202 with the new run, or 200 with the earlier run that has the same `idempotencyKey`. With a `cacheKey` " +
          "that an unexpired COMPLETED run of the same task has, the new run is recorded COMPLETED with `cached: true` and " +
          "that run's result, and is not dispatched.\n\n" +
          "When a worker has registered the task, `parameters` are checked against its input schema first: 400 " +
          "`OFFLOAD_INVALID_PARAMETERS` with `issues` naming each field (e.g. `parameters.tenant`), and nothing is recorded. " +
          "When no worker has registered it yet, the run is recorded unchecked and the answer says so in `warnings`.",
        tags: ["runs"],
        body: CreateRunBodySchema,
        response: {
          200: SubmittedRunSchema,
          202: SubmittedRunSchema,
          ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_INVALID_PARAMETERS", "OFFLOAD_BODY_TOO_LARGE", ...ACCESS_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const namespace = deps.access.namespaceFor(request, request.body.namespace);
      await deps.access.require(request, "create", namespace);
      const { warnings } = checked(checkSubmission(deps.registry, [request.body], () => "parameters"));
      const one = await singles.submit({ ...request.body, namespace });
      if (one.created) deps.metrics.runCreated(one.run.task);
      if (!one.created) reply.header("idempotent-replayed", "true");
      return reply.code(one.created ? 202 : 200).send(warnings.length ? { ...one.run, warnings } : one.run);
    },
  );

  app.post(
    "/v1/runs/batch",
    {
      serializerCompiler: runSerializer,
      schema: {
        summary: "Record and dispatch many runs at once",
        description:
          `Answers the runs in the order given; an entry whose \`idempotencyKey\` is taken (in its namespace) answers the earlier run. ` +
          `At most ${MAX_BATCH} runs, and the body within OFFLOAD_API_BODY_LIMIT. Each entry may name its \`namespace\`; the caller ` +
          "needs `create` on runs in every namespace the batch names, else nothing is recorded (403). Parameters are checked as " +
          "for one run: one entry that breaks its task's registered input schema refuses the whole batch (400 " +
          "`OFFLOAD_INVALID_PARAMETERS`, `issues` such as `runs.3.parameters.tenant`); `warnings` names each task no worker " +
          "has registered yet, once.",
        tags: ["runs"],
        body: CreateRunsBatchBodySchema,
        response: {
          202: CreateRunsBatchResponseSchema,
          ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_INVALID_PARAMETERS", "OFFLOAD_BODY_TOO_LARGE", ...ACCESS_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const bodies = request.body.runs.map((b) => ({ ...b, namespace: deps.access.namespaceFor(request, b.namespace) }));
      for (const namespace of new Set(bodies.map((b) => b.namespace))) await deps.access.require(request, "create", namespace);
      const { warnings } = checked(checkSubmission(deps.registry, bodies, (i) => `runs.${i}.parameters`));
      const runs = await submitRuns(deps, bodies);
      for (const r of runs) if (r.created) deps.metrics.runCreated(r.run.task);
      return reply.code(202).send({ runs: runs.map((r) => r.run), ...(warnings.length ? { warnings } : {}) });
    },
  );

  app.get(
    "/v1/runs",
    {
      serializerCompiler: runSerializer,
      schema: {
        summary: "List runs, newest first",
        description:
          "Of one namespace: `namespace`, else (with Kubernetes auth) the caller's own ServiceAccount namespace; " +
          "with a shared token or no auth and no `namespace`, of every namespace.",
        tags: ["runs"],
        querystring: ListRunsQuerySchema,
        response: { 200: ListRunsResponseSchema, ...errorResponses("OFFLOAD_VALIDATION", ...ACCESS_ERRORS) },
      },
    },
    async (request) => {
      const { task, state, limit, cursor } = request.query;
      const namespace = deps.access.listingNamespace(request, request.query.namespace);
      if (namespace !== undefined) await deps.access.require(request, "list", namespace);
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      if (cursor !== undefined && !after) {
        throw new ApiHttpError("OFFLOAD_VALIDATION", "invalid query: cursor: not a cursor this API gave out", {
          issues: [{ path: "cursor", message: "not a cursor this API gave out (use `nextCursor` from the previous page)" }],
        });
      }
      return listRuns(db, { namespace, task, state, limit, after });
    },
  );

  app.get(
    "/v1/runs/:id",
    {
      serializerCompiler: runSerializer,
      schema: {
        summary: "Get a run",
        tags: ["runs"],
        params: IdParams,
        response: { 200: RunSchema, ...errorResponses("OFFLOAD_RUN_NOT_FOUND", ...ACCESS_ERRORS) },
      },
    },
    async (request) => {
      const { id } = request.params;
      await authorizeRun(deps, request, id, "get");
      const run = await getRun(db, id);
      if (!run) throw notFound(id);
      return run;
    },
  );

  app.get(
    "/v1/runs/:id/result",
    {
      serializerCompiler: runSerializer,
      schema: {
        summary: "Get a run's result, long-polling up to `wait` seconds",
        description:
          "200 with `done: true` once COMPLETED (a large result is read from the results store); 202 with `done: false` " +
          "while it is not finished; 409 `OFFLOAD_RUN_FAILED` (with the run's `error`) or `OFFLOAD_RUN_CANCELLED` when it " +
          "ended so; 410 `OFFLOAD_RESULT_UNAVAILABLE` when its stored result is gone.",
        tags: ["runs"],
        params: IdParams,
        querystring: ResultQuerySchema,
        response: {
          200: ResultResponseSchema,
          202: ResultResponseSchema,
          ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_RUN_NOT_FOUND", "OFFLOAD_RUN_FAILED", "OFFLOAD_RUN_CANCELLED", "OFFLOAD_RESULT_UNAVAILABLE", ...ACCESS_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await authorizeRun(deps, request, id, "get");
      // The client going away ends the wait, as does shutdown.
      const gone = new AbortController();
      reply.raw.once("close", () => gone.abort());
      const signal = AbortSignal.any([gone.signal, deps.closing]);
      const deadline = Date.now() + request.query.wait * 1000;
      let run: Run | undefined;
      // Subscribed before the first read, so a finish in between is not missed.
      const sub = deps.notifier.subscribe(id);
      try {
        run = await getRun(db, id);
        while (run && !isTerminal(run.state)) {
          const left = deadline - Date.now();
          if (left <= 0 || signal.aborted) break;
          const finished = await sub.wait(Math.min(left, deps.resultRecheckMs), signal);
          if (finished) {
            run = finished;
            break;
          }
          // Another replica may have recorded its end: read the state alone, and the whole run only once it finished.
          // Until then only `state` (and `cached`, fixed while unfinished) of the run is answered.
          const state = await getRunState(db, id);
          run = state === undefined ? undefined : isTerminal(state) ? await getRun(db, id) : { ...run, state };
        }
      } finally {
        sub.cancel();
      }
      if (!run) throw notFound(id);
      if (run.state === "FAILED") {
        const error = run.error ?? { type: "Error", message: "the run failed" };
        throw new ApiHttpError("OFFLOAD_RUN_FAILED", `run ${id} failed: ${error.type}: ${error.message}`, { error, runId: id });
      }
      if (run.state === "CANCELLED") throw new ApiHttpError("OFFLOAD_RUN_CANCELLED", `run ${id} was cancelled`, { runId: id });
      const done = run.state === "COMPLETED";
      let result = done ? run.result : null;
      if (done && run.resultRef !== null) {
        const stored = await readStoredResult(deps.results, run.resultRef);
        if (!stored) {
          throw new ApiHttpError("OFFLOAD_RESULT_UNAVAILABLE", `run ${id} completed, but its result (${run.resultRef} in the results store) is gone`, {
            runId: id,
          });
        }
        result = stored.value;
      }
      return reply.code(done ? 200 : 202).send({ id, state: run.state, done, result, cached: run.cached });
    },
  );
}
