import { ERROR_CODES, type ErrorBody, type ErrorCode } from "@offload/sdk/internal";
import type { FastifyError, FastifyInstance } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";

/** An error a route throws on purpose; the error handler answers it with its code's status. */
export class ApiHttpError extends Error {
  readonly code: ErrorCode;
  readonly extra: Partial<ErrorBody>;
  constructor(code: ErrorCode, message: string, extra: Partial<ErrorBody> = {}) {
    super(message);
    this.name = "ApiHttpError";
    this.code = code;
    this.extra = extra;
  }
}

/** The body for `code`, with its registered status. */
export function errorBody(code: ErrorCode, message: string, extra: Partial<ErrorBody> = {}): ErrorBody {
  return { code, message, statusCode: ERROR_CODES[code].status, ...extra };
}

interface ZodIssueLike {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: { keys?: unknown };
}

/** Turns the validator's issues into `{path, message}` pairs, naming each unknown field on its own. */
function issuesOf(validation: readonly ZodIssueLike[]): { path: string; message: string }[] {
  return validation.flatMap((v) => {
    const base = v.instancePath.replace(/^\//, "").split("/").filter(Boolean).join(".");
    if (v.keyword === "unrecognized_keys" && Array.isArray(v.params?.keys)) {
      return v.params.keys.map((k) => ({ path: base ? `${base}.${String(k)}` : String(k), message: "unknown field" }));
    }
    return [{ path: base, message: v.message ?? "invalid" }];
  });
}

const where = (context: string | undefined): string => (context === "querystring" ? "query" : (context ?? "request"));

/**
 * Every error leaves as an `ErrorBody` with a code from the registry:
 * validation problems name their fields, an oversized body is 413, a body
 * that is not JSON is 400, unknown routes are 404, the rest 500 (logged).
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiHttpError, request, reply) => {
    if (err instanceof ApiHttpError) {
      const body = errorBody(err.code, err.message, err.extra);
      return reply.code(body.statusCode).send(body);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = issuesOf(err.validation as unknown as ZodIssueLike[]);
      const summary = issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ");
      return reply.code(400).send(errorBody("OFFLOAD_VALIDATION", `invalid ${where(err.validationContext)}: ${summary}`, { issues }));
    }
    if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || err.statusCode === 413) {
      return reply.code(413).send(errorBody("OFFLOAD_BODY_TOO_LARGE", `request body is larger than the limit of ${app.initialConfig.bodyLimit} bytes`));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Bodies that are not JSON, wrong content types, and the like: the client's to fix.
      const message =
        err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
          ? "the body must be JSON (content-type: application/json)"
          : err instanceof SyntaxError || /JSON/i.test(err.message)
            ? `the body is not valid JSON: ${err.message}`
            : err.message;
      return reply.code(400).send(errorBody("OFFLOAD_VALIDATION", message, { issues: [{ path: "", message }] }));
    }
    request.log.error({ err }, "request failed");
    return reply.code(500).send(errorBody("OFFLOAD_INTERNAL", "internal error; the run API's logs have the details"));
  });
  app.setNotFoundHandler((request, reply) => {
    const body = errorBody("OFFLOAD_ROUTE_NOT_FOUND", `no endpoint ${request.method} ${request.url.split("?")[0]}; see /docs`);
    return reply.code(404).send(body);
  });
}
