import {
  ListSchedulesResponseSchema,
  MAX_JSON_DEPTH,
  PutScheduleBodySchema,
  ScheduleKeySchema,
  ScheduleQuerySchema,
  ScheduleSchema,
  jsonProblem,
} from "@offload/sdk/internal";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { CronSpecError, DEFAULT_TIME_ZONE, checkCronSpec, nextTime, scheduleSeed } from "../../dispatch/cron.js";
import type { ParameterChecking } from "../../registry/submission.js";
import type { Db } from "../../store/db.js";
import { deleteSchedule, getSchedule, listSchedules, putSchedule } from "../../store/schedules.js";
import type { Access } from "../auth/index.js";
import { ApiHttpError } from "../errors.js";
import { ACCESS_ERRORS } from "./runs.js";
import { errorResponses } from "./schemas.js";

/** What the schedule routes need. */
export interface ScheduleRoutesDeps {
  db: Db;
  access: Access;
  /** The registered input schemas: a schedule's parameters are checked as `POST /v1/runs` checks a run's. */
  registry: ParameterChecking;
  /** Tells this replica's scheduler that a schedule changed (it may be due sooner than the loop's next wake-up). */
  changed(): void;
}

// GET and DELETE take any key: one that could not have been PUT is simply not found.
const KeyParams = z.object({ key: z.string().min(1).describe("The schedule's key, unique within its namespace.") });

function notFound(namespace: string, key: string): ApiHttpError {
  return new ApiHttpError("OFFLOAD_SCHEDULE_NOT_FOUND", `no schedule has the key ${JSON.stringify(key)} in namespace ${namespace}`);
}

/**
 * `/v1/schedules…`: cron schedules of runs, made from code (`task.schedule()`),
 * HTTP or a TaskSchedule resource. Authorized as the runs they start: PUT needs
 * `create` on runs in the namespace, GET `get`, the list `list`, DELETE `delete`.
 */
export function registerScheduleRoutes(root: FastifyInstance, deps: ScheduleRoutesDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { db, access } = deps;

  app.put(
    "/v1/schedules/:key",
    {
      schema: {
        summary: "Create or replace a schedule",
        description:
          "201 with the new schedule, 200 with the replaced one. Each time the cron expression names (read in `timeZone`, UTC " +
          "when unset; six fields put seconds first) starts one run of `task` with `parameters`, across every replica of the run " +
          "API; its idempotency key is `schedule:<key>:<time>`. Replacing keeps `lastScheduleTime` and `lastRunId`, and keeps " +
          "`nextScheduleTime` unless `schedule`, `timeZone` or `suspend` changed (then it counts from now). When a worker has " +
          "registered the task, `parameters` are checked against its input schema (400 `OFFLOAD_INVALID_PARAMETERS`). The namespace is " +
          "`namespace` (in the body or the query), else as for `POST /v1/runs`; the caller needs `create` on runs there.",
        tags: ["schedules"],
        params: z.object({ key: ScheduleKeySchema }),
        querystring: ScheduleQuerySchema,
        body: PutScheduleBodySchema,
        response: {
          200: ScheduleSchema,
          201: ScheduleSchema,
          ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_INVALID_SCHEDULE", "OFFLOAD_INVALID_PARAMETERS", "OFFLOAD_BODY_TOO_LARGE", ...ACCESS_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (body.namespace !== undefined && request.query.namespace !== undefined && body.namespace !== request.query.namespace) {
        throw new ApiHttpError("OFFLOAD_VALIDATION", `the body names namespace ${body.namespace} and the query ${request.query.namespace}; name one`, {
          issues: [{ path: "namespace", message: "differs from the query's namespace" }],
        });
      }
      const namespace = access.namespaceFor(request, body.namespace ?? request.query.namespace);
      await access.require(request, "create", namespace);
      // The schema bounds the JSON's shape; PostgreSQL's jsonb refuses some text (U+0000), so say so before storing.
      const problem = body.parameters === undefined ? undefined : jsonProblem(body.parameters, { maxDepth: MAX_JSON_DEPTH, text: true, path: "parameters" });
      if (problem) {
        throw new ApiHttpError("OFFLOAD_VALIDATION", `invalid body: ${problem.path}: ${problem.message}`, { issues: [problem] });
      }
      // Refused now rather than failing at every time it fires. A task no worker registered yet is taken unchecked.
      const verdict = deps.registry.checkParameters(body.task, body.parameters, "parameters");
      if (verdict.registered && verdict.issues.length) {
        const listed = verdict.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
        throw new ApiHttpError("OFFLOAD_INVALID_PARAMETERS", `parameters do not match the input schema registered for task ${JSON.stringify(body.task)}: ${listed}`, {
          issues: verdict.issues,
        });
      }
      const spec = { schedule: body.schedule, timeZone: body.timeZone ?? DEFAULT_TIME_ZONE, seed: scheduleSeed(namespace, request.params.key) };
      const now = new Date();
      try {
        checkCronSpec(spec, now);
      } catch (err) {
        if (!(err instanceof CronSpecError)) throw err;
        throw new ApiHttpError("OFFLOAD_INVALID_SCHEDULE", `invalid schedule: ${err.field}: ${err.message}`, {
          issues: [{ path: err.field, message: err.message }],
        });
      }
      const { schedule, created } = await putSchedule(
        db,
        {
          namespace,
          key: request.params.key,
          task: body.task,
          schedule: body.schedule,
          timeZone: spec.timeZone,
          parameters: body.parameters,
          concurrencyPolicy: body.concurrencyPolicy,
          suspend: body.suspend,
          startingDeadlineSeconds: body.startingDeadlineSeconds,
          priority: body.priority,
          concurrencyKey: body.concurrencyKey,
          rateLimitKey: body.rateLimitKey,
        },
        body.suspend ? null : nextTime(spec, now),
      );
      deps.changed();
      request.log.info({ schedule: schedule.key, namespace, task: schedule.task, created }, created ? "schedule created" : "schedule replaced");
      return reply.code(created ? 201 : 200).send(schedule);
    },
  );

  app.get(
    "/v1/schedules/:key",
    {
      schema: {
        summary: "Get a schedule",
        description: "Of the namespace `namespace`, else as for `POST /v1/runs`; the caller needs `get` on runs there.",
        tags: ["schedules"],
        params: KeyParams,
        querystring: ScheduleQuerySchema,
        response: { 200: ScheduleSchema, ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_SCHEDULE_NOT_FOUND", ...ACCESS_ERRORS) },
      },
    },
    async (request) => {
      const namespace = await authorize(access, request, request.query.namespace, "get");
      const schedule = await getSchedule(db, namespace, request.params.key);
      if (!schedule) throw notFound(namespace, request.params.key);
      return schedule;
    },
  );

  app.get(
    "/v1/schedules",
    {
      schema: {
        summary: "List schedules",
        description:
          "Of one namespace: `namespace`, else (with Kubernetes auth) the caller's own ServiceAccount namespace; with a shared " +
          "token or no auth and no `namespace`, of every namespace. Ordered by namespace and key.",
        tags: ["schedules"],
        querystring: ScheduleQuerySchema,
        response: { 200: ListSchedulesResponseSchema, ...errorResponses("OFFLOAD_VALIDATION", ...ACCESS_ERRORS) },
      },
    },
    async (request) => {
      const namespace = access.listingNamespace(request, request.query.namespace);
      if (namespace !== undefined) await access.require(request, "list", namespace);
      return { schedules: await listSchedules(db, namespace) };
    },
  );

  app.delete(
    "/v1/schedules/:key",
    {
      schema: {
        summary: "Delete a schedule",
        description:
          "204 once deleted: it starts no more runs. Runs it started are left as they are (cancel one with " +
          "`POST /v1/runs/:id/cancel`). The caller needs `delete` on runs in the namespace.",
        tags: ["schedules"],
        params: KeyParams,
        querystring: ScheduleQuerySchema,
        response: { 204: z.null().describe("Deleted."), ...errorResponses("OFFLOAD_VALIDATION", "OFFLOAD_SCHEDULE_NOT_FOUND", ...ACCESS_ERRORS) },
      },
    },
    async (request, reply) => {
      const namespace = await authorize(access, request, request.query.namespace, "delete");
      if (!(await deleteSchedule(db, namespace, request.params.key))) throw notFound(namespace, request.params.key);
      deps.changed();
      request.log.info({ schedule: request.params.key, namespace }, "schedule deleted");
      return reply.code(204).send(null);
    },
  );
}

/** The namespace a call about one schedule is in, once the caller may do `verb` on runs there. */
async function authorize(access: Access, request: FastifyRequest, named: string | undefined, verb: "get" | "delete"): Promise<string> {
  const namespace = access.namespaceFor(request, named);
  await access.require(request, verb, namespace);
  return namespace;
}
