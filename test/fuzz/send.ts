import { request } from "node:http";
import type { FuzzRequest } from "./requests.js";

/** What came back: the status, and the body as text (cut off for event streams, which never end by themselves). */
export interface FuzzAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * Sends `req` as it is over a fresh connection with node:http: no client
 * library fixes its path, headers or body first. Rejects when no answer comes
 * (the connection was refused or reset: the API died or hung up on it).
 * A server may answer an oversized body (413) and close the connection while
 * the body is still being written; the answer counts if it was read.
 */
export function send(baseUrl: string, req: FuzzRequest, timeoutMs = 30_000): Promise<FuzzAnswer> {
  const url = new URL(baseUrl);
  const body = req.body === undefined ? undefined : Buffer.from(req.body, "utf8");
  return new Promise((resolve, reject) => {
    let answered = false;
    const answer = (a: FuzzAnswer): void => {
      answered = true;
      resolve(a);
    };
    const headers: Record<string, string> = { ...req.headers };
    if (body && !Object.keys(headers).some((h) => h.toLowerCase() === "transfer-encoding")) headers["content-length"] = String(body.length);
    const r = request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const contentType = String(res.headers["content-type"] ?? "");
      const chunks: Buffer[] = [];
      if (contentType.startsWith("text/event-stream")) {
        // The status and type are the answer; the stream would stay open while the run is unfinished.
        res.destroy();
        answer({ status: res.statusCode ?? 0, contentType, body: "" });
        return;
      }
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => answer({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (err) => (answered ? undefined : reject(err)));
    });
    r.on("timeout", () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on("error", (err) => (answered ? undefined : reject(err)));
    r.end(body);
  });
}

/** The `code` of an error body, if the body is the API's JSON error envelope. */
export function errorCode(answer: FuzzAnswer): string | undefined {
  try {
    const code = (JSON.parse(answer.body) as { code?: unknown }).code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}
