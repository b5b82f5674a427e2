import { jsonProblem, MAX_BODY_DEPTH } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import { ApiHttpError } from "./errors.js";

/**
 * JSON request bodies: parsed as fastify does (prototype-poisoning checks
 * included), then bounded in depth, keys and key length before anything
 * recursive (zod's validation of `Json`, the database's jsonb parser) sees
 * them. An empty body, which many HTTP clients send with
 * `content-type: application/json` on a body-less POST, is no body: the
 * routes that take none (cancel, retry) accept it; the others say what is
 * missing.
 */
export function installJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    parseJson(request, text, (err, value) => {
      if (err) return done(err, undefined);
      const problem = jsonProblem(value, { maxDepth: MAX_BODY_DEPTH, text: false });
      if (!problem) return done(null, value);
      const where = problem.path || "(root)";
      done(new ApiHttpError("OFFLOAD_VALIDATION", `invalid body: ${where}: ${problem.message}`, { issues: [problem] }), undefined);
    });
  });
}
