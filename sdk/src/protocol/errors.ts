import { z } from "zod";
import { RunErrorSchema } from "./run.js";

/**
 * Every error the run API answers with, by stable code. The body of every
 * `4xx`/`5xx` is an {@link ErrorBody} carrying one of these codes.
 */
export const ERROR_CODES = {
  OFFLOAD_VALIDATION: { status: 400, description: "The request is malformed; `issues` says which field and why." },
  OFFLOAD_INVALID_PARAMETERS: {
    status: 400,
    description: "`parameters` do not match the input schema a worker registered for the task; `issues` names each field and why.",
  },
  OFFLOAD_INVALID_SCHEDULE: { status: 400, description: "The cron expression or time zone cannot be read; `issues` says which and why." },
  OFFLOAD_SCHEDULE_NOT_FOUND: { status: 404, description: "No schedule has this key in this namespace." },
  OFFLOAD_BODY_TOO_LARGE: { status: 413, description: "The request body is larger than the API accepts (OFFLOAD_API_BODY_LIMIT)." },
  OFFLOAD_UNSUPPORTED_MEDIA_TYPE: { status: 415, description: "The body's content-type is not one the API reads; send JSON (content-type: application/json)." },
  OFFLOAD_HEADERS_TOO_LARGE: { status: 431, description: "The request's headers are larger than the API accepts (Node's --max-http-header-size, 16 KiB by default)." },
  OFFLOAD_REQUEST_TIMEOUT: { status: 408, description: "The request did not arrive in full in time; send it again." },
  OFFLOAD_UNAUTHORIZED: {
    status: 401,
    description:
      "Missing, malformed, expired or wrong `Authorization: Bearer <token>`; set OFFLOAD_API_TOKEN, or OFFLOAD_TOKEN_FILE to a ServiceAccount token with the API's audience.",
  },
  OFFLOAD_FORBIDDEN: {
    status: 403,
    description: "The caller may not do this verb on `runs` (group offload.dev) in this namespace; grant it with a Role/RoleBinding (e.g. to ClusterRole offload-runs-creator).",
  },
  OFFLOAD_RATE_LIMITED: { status: 429, description: "Too many requests from this caller; wait `Retry-After` seconds and try again." },
  OFFLOAD_RUN_NOT_FOUND: { status: 404, description: "No run has this id." },
  OFFLOAD_ROUTE_NOT_FOUND: { status: 404, description: "No such endpoint; see /docs." },
  OFFLOAD_RUN_FAILED: { status: 409, description: "The run ended FAILED; `error` holds its error." },
  OFFLOAD_RUN_CANCELLED: { status: 409, description: "The run was cancelled." },
  OFFLOAD_RUN_FINISHED: { status: 409, description: "The run already finished; it cannot be changed." },
  OFFLOAD_RUN_NOT_RETRYABLE: { status: 409, description: "Only a FAILED run can be retried." },
  OFFLOAD_RESULT_UNAVAILABLE: { status: 410, description: "The run completed but its stored result is gone." },
  OFFLOAD_UNAVAILABLE: { status: 503, description: "A dependency (database or NATS) is unreachable; retry later." },
  OFFLOAD_INTERNAL: { status: 500, description: "An unexpected error; the API's logs have the details." },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
export const ErrorCodeSchema = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

/** One problem with a request: where (a path into the body or query) and what. */
export const IssueSchema = z.object({ path: z.string(), message: z.string() });

/** The JSON body of every error answer of the run API. */
export const ErrorBodySchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  statusCode: z.number().int(),
  issues: z.array(IssueSchema).optional(),
  /** With OFFLOAD_RUN_FAILED: the run's own error. */
  error: RunErrorSchema.optional(),
  runId: z.string().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
