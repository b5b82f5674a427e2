/**
 * Serves the dashboard (built from ui/ by `npm run build` into dist/ui) at
 * /ui/. The files hold no data: every figure on the page comes from the API's
 * own routes, called by the page with the token the user gives it, so the
 * files themselves are open to anyone (as /docs is).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { errorBody } from "./errors.js";

/** Where `npm run build` puts the dashboard: beside this file's folder in dist. */
export const UI_DIR = fileURLToPath(new URL("../ui/", import.meta.url));

/** The paths of the dashboard's files, which need no token. */
export const isDashboardPath = (url: string): boolean => url === "/ui" || url.startsWith("/ui/") || url.startsWith("/ui?");

export async function registerDashboard(app: FastifyInstance, dir = UI_DIR): Promise<void> {
  app.get("/ui", { schema: { hide: true } }, async (_request, reply) => reply.redirect("/ui/", 301));
  if (!existsSync(dir)) {
    app.get("/ui/*", { schema: { hide: true } }, async (_request, reply) =>
      reply.code(404).send(errorBody("OFFLOAD_ROUTE_NOT_FOUND", `the dashboard is not built (${dir} is missing): run \`npm run build\` at the root of the Offload repository`)),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: "/ui/",
    // Hashed asset names change with their content; index.html must always be re-read.
    cacheControl: false,
    setHeaders: (res, path) => {
      res.header("cache-control", /\/assets\//.test(path) ? "public, max-age=31536000, immutable" : "no-cache");
      res.header("x-content-type-options", "nosniff");
      res.header("content-security-policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    },
  });
}
