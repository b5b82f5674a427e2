import { ERROR_CODES, type ErrorBody, type ErrorCode } from "@offload/sdk/internal";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { DatabaseBrokenError, isDatabaseUnavailable } from "../store/db.js";

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

// nats.js's errors that mean NATS is away or did not answer, rather than that the request was wrong.
const NATS_UNAVAILABLE = new Set(["NatsDisconnectedError", "ClosedConnectionError", "DrainingConnectionError", "ConnectionError", "TimeoutError", "NoResponders", "RequestError"]);

/** Whether `err` is a dependency (PostgreSQL, NATS) being away: the client should retry, it did nothing wrong. */
export function isDependencyUnavailable(err: unknown): boolean {
  return isDatabaseUnavailable(err) || (err instanceof Error && NATS_UNAVAILABLE.has(err.name));
}

const where = (context: string | undefined): string => (context === "querystring" ? "query" : (context ?? "request"));

/**
 * Every error leaves as an `ErrorBody` with a code from the registry:
 * validation problems name their fields, an oversized body is 413, a body
 * that is not JSON is 400, one of another type 415, unknown routes are 404, a
 * database or NATS that does not answer 503 (the client may retry), the rest
 * 500 (logged).
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
    if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || err.statusCode === 415) {
      const type = request.headers["content-type"] ?? "(none)";
      return reply.code(415).send(errorBody("OFFLOAD_UNSUPPORTED_MEDIA_TYPE", `the body must be JSON (content-type: application/json), not ${type}`));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Bodies that are not JSON, bad content lengths, and the like: the client's to fix.
      const message =
        err instanceof SyntaxError || /JSON/i.test(err.message) ? `the body is not valid JSON: ${err.message}` : err.message;
      return reply.code(400).send(errorBody("OFFLOAD_VALIDATION", message, { issues: [{ path: "", message }] }));
    }
    if (err instanceof DatabaseBrokenError) {
      request.log.error({ err }, "the embedded database is broken; restart offload-api");
      return reply.code(503).send(errorBody("OFFLOAD_UNAVAILABLE", err.message));
    }
    if (isDependencyUnavailable(err)) {
      request.log.warn({ err }, "a dependency did not answer");
      return reply
        .code(503)
        .header("retry-after", "1")
        .send(errorBody("OFFLOAD_UNAVAILABLE", "the database or NATS is unavailable right now; try again shortly (a submission answered so may or may not have been recorded; retry with the same idempotencyKey to be sure of one run)"));
    }
    request.log.error({ err }, "request failed");
    return reply.code(500).send(errorBody("OFFLOAD_INTERNAL", "internal error; the run API's logs have the details"));
  });
  app.setNotFoundHandler((request, reply) => {
    const body = errorBody("OFFLOAD_ROUTE_NOT_FOUND", `no endpoint ${request.method} ${request.url.split("?")[0]}; see /docs`);
    return reply.code(404).send(body);
  });
}

/** Longest path parameter (a run id) the router takes; longer ones get 400 from {@link frameworkErrors}. */
export const MAX_PARAM_LENGTH = 1024;

/**
 * Fastify's `frameworkErrors`: errors raised before any route runs (a URL
 * whose percent-encoding is broken), answered in the same envelope.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const url = request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url;
  const message =
    err.code === "FST_ERR_BAD_URL"
      ? `the URL is malformed (bad percent-encoding): ${url}`
      : err.code === "FST_ERR_MAX_PARAM_LENGTH"
        ? `a part of the path is longer than ${MAX_PARAM_LENGTH} characters; no id is that long: ${url}`
        : err.message;
  void reply.code(400).send(errorBody("OFFLOAD_VALIDATION", message, { issues: [{ path: "url", message }] }));
}

/**
 * The HTTP server's `clientError`: requests Node's parser refused before
 * fastify saw them (headers too large, malformed request lines, a request
 * that never arrived in full). Written to the socket directly, in the same
 * envelope as every other error, if nothing was written on that socket yet,
 * then the socket is closed as Node does.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const body =
    err.code === "HPE_HEADER_OVERFLOW"
      ? errorBody("OFFLOAD_HEADERS_TOO_LARGE", "the request's headers are too large; send fewer or shorter headers (or a shorter URL)")
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? errorBody("OFFLOAD_REQUEST_TIMEOUT", "the request did not arrive in full in time")
        : errorBody("OFFLOAD_VALIDATION", `malformed HTTP request (${err.code ?? err.message})`);
  const json = JSON.stringify(body);
  // Node's own rule for this event: answer unless a response on this socket has begun (its headers went out), since
  // a raw response written then would land inside it. A kept-alive socket whose earlier responses are finished has
  // no response attached, so a bad second request still gets its 431 or 400, as SDK clients (keep-alive) need.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    socket.write(
      `HTTP/1.1 ${body.statusCode} ${STATUS_CODES[body.statusCode] ?? ""}\r\nContent-Length: ${Buffer.byteLength(json)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${json}`,
    );
  }
  socket.destroy(err);
}
