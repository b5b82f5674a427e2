/**
 * The stand-in's wire format: errors as Kubernetes `Status` bodies, warnings
 * as `Warning: 299` headers, request bodies read and decoded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isObj, type Obj } from "./fields.js";
import type { FieldValidation, StatusCause } from "./schema/index.js";
import { resourceName, type ResourceType } from "./resources.js";

/** A request the stand-in refuses, as the Status the real server would answer with. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: StatusCause[] = [],
    readonly details: Obj = {},
  ) {
    super(message);
  }
}

export function statusBody(code: number, reason: string, message: string, causes: StatusCause[] = [], details: Obj = {}): Obj {
  const d: Obj = { ...details, ...(causes.length ? { causes } : {}) };
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(Object.keys(d).length ? { details: d } : {}), code };
}

/**
 * 422 Invalid, worded as apimachinery's `NewInvalid`: `KIND "name" is invalid: field: detail`
 * (several causes in brackets). `qualified` is `Kind.group` or `plural.group`, as the caller's endpoint names it.
 */
export function invalid(qualified: string, name: string, causes: StatusCause[]): HttpError {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const text = parts.length === 1 ? parts[0]! : `[${parts.join(", ")}]`;
  return new HttpError(422, "Invalid", `${qualified} "${name}" is invalid: ${text}`, causes, { name, kind: qualified.split(".")[0] });
}

/** `Warning` header values (RFC 7234 form the real server uses: code 299, agent `-`, quoted text). */
export function warningHeaders(warnings: string[]): string[] {
  return [...new Set(warnings)].map((w) => `299 - ${JSON.stringify(w)}`);
}

export function send(res: ServerResponse, status: number, body: unknown, warnings: string[] = []): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | number | string[]> = { "content-type": "application/json", "content-length": Buffer.byteLength(text) };
  if (warnings.length) headers.warning = warningHeaders(warnings);
  res.writeHead(status, headers);
  res.end(text);
}

/** The body as bytes (protobuf bodies, which kubectl sends for some built-in types, are not text). */
export function readBodyBytes(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body || "{}");
  } catch (err) {
    throw new HttpError(400, "BadRequest", `the body of the request could not be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function decodeObject(body: string): Obj {
  const v = parseJson(body);
  if (!isObj(v)) throw new HttpError(400, "BadRequest", "the body of the request must be a JSON object");
  return v;
}

export function parseFieldValidation(v: string | undefined): FieldValidation {
  if (v === undefined || v === "") return "Warn";
  if (v === "Strict" || v === "Warn" || v === "Ignore") return v;
  throw new HttpError(400, "BadRequest", `fieldValidation must be one of "Ignore", "Warn" or "Strict", got "${v}"`);
}

export function conflict(t: ResourceType, name: string): HttpError {
  return new HttpError(409, "Conflict", `Operation cannot be fulfilled on ${resourceName(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, [], { name, group: t.group, kind: t.plural });
}

export function notFound(t: ResourceType, name: string): HttpError {
  return new HttpError(404, "NotFound", `${resourceName(t)} "${name}" not found`, [], { name, ...(t.group ? { group: t.group } : {}), kind: t.plural });
}

export function notFoundPath(pathname: string): HttpError {
  return new HttpError(404, "NotFound", `the server could not find the requested resource (${pathname})`);
}
