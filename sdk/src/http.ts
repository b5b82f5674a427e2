/**
 * The client's JSON calls over node:http(s) with a keep-alive agent. Node's
 * fetch (undici) builds a Request, a Response, web streams and an abort
 * signal per call: in the bench that made one `delay()` cost ~0.6 ms of the
 * app's CPU, over half of it in that machinery. An app calls `delay()` on its
 * request path, so the cheaper transport is worth its few lines.
 */
import http from "node:http";
import https from "node:https";

/** A whole answer: the status and the body as text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

export class HttpTransport {
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;

  constructor(baseUrl: string) {
    this.#base = new URL(baseUrl);
    const tls = this.#base.protocol === "https:";
    if (!tls && this.#base.protocol !== "http:") throw new TypeError(`the run API URL must be http(s)://, got ${baseUrl}`);
    // Idle sockets are kept for the next call, and unref'd by the agent, so they never hold the process open.
    this.#agent = tls ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.#request = tls ? https.request : http.request;
  }

  /** Sends one request and reads the whole answer; rejects on a network error, or once `timeoutMs` passed. */
  send(method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.#base.pathname.replace(/\/$/, "") + path, this.#base);
      const req = this.#request(url, { method, headers: body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) }, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", fail);
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      function fail(err: Error): void {
        clearTimeout(timer);
        reject(err);
      }
      req.on("error", fail);
      req.end(body);
    });
  }
}
