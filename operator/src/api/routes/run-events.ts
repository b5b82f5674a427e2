import { canTransition, isTerminal, type Run, type RunProgress, type RunProgressEvent } from "@offload/sdk/internal";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Db } from "../../store/db.js";
import { getRun } from "../../store/runs.js";
import { openEventStream } from "../event-stream.js";
import type { RunNotifier } from "../notifier.js";
import type { Access } from "../auth/index.js";
import { ACCESS_ERRORS, IdParams, authorizeRun, notFound } from "./runs.js";
import { errorResponses } from "./schemas.js";

/** What the event stream route needs. */
export interface RunEventRoutesDeps {
  db: Db;
  notifier: RunNotifier;
  /** How often a stream re-reads the run (another replica may have recorded a change), in ms. */
  recheckMs: number;
  /** How often an idle stream sends a comment, so proxies keep it open, in ms. @defaultValue 15000 */
  keepAliveMs?: number;
  /** Aborted at shutdown: every stream ends. */
  closing: AbortSignal;
  access: Access;
}

// Whether `next` is news after `last`: a change forward (a re-read racing an event must never show a run going back),
// or a PENDING run held for a limit whose reason changed (dispatched, or now waiting for another kind or key).
const isNews = (last: Run, next: Run): boolean =>
  (canTransition(last.state, next.state) && (next.state !== last.state || next.attempts > last.attempts)) ||
  (last.state === "PENDING" && next.state === "PENDING" && next.attempts === last.attempts && waitChanged(last, next));

const waitChanged = ({ waitingFor: a }: Run, { waitingFor: b }: Run): boolean =>
  (a === null) !== (b === null) || (a !== null && b !== null && (a.kind !== b.kind || a.key !== b.key || a.limit !== b.limit));

// Whether `next` brings a progress report `last` did not show: with a change of state (or attempt), any other
// report; within the same state and attempt, only a newer one (a re-read may race a notification).
const isProgressNews = (last: Run, next: Run, stateNews: boolean): next is Run & { progress: RunProgress } =>
  next.progress !== undefined &&
  (stateNews
    ? next.progress.updatedAt !== last.progress?.updatedAt
    : next.state === last.state && next.attempts === last.attempts && (last.progress === undefined || next.progress.updatedAt > last.progress.updatedAt));

/** `GET /v1/runs/:id/events`: a run's state changes as server-sent events. */
export function registerRunEventRoutes(root: FastifyInstance, deps: RunEventRoutesDeps): void {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/runs/:id/events",
    {
      schema: {
        summary: "Follow a run's state as server-sent events",
        description:
          "A `text/event-stream`: first the run as it is (`event: state`, `data:` the run as JSON), then the run again after " +
          "each change of state (or a new attempt), and `event: progress` (`data:` `{runId, progress}`) after each progress report " +
          "the task makes with `ctx.progress(...)` (coalesced by the worker to a few per second). " +
          "The stream ends after a terminal state (COMPLETED, FAILED, CANCELLED), " +
          "and at the API's shutdown (reconnect to continue). A comment line every 15 s keeps idle connections open.",
        tags: ["runs"],
        params: IdParams,
        response: {
          200: {
            description: "The event stream.",
            content: { "text/event-stream": { schema: z.string().describe("`event: state` / `data: <Run as JSON>` and `event: progress` / `data: {runId, progress}` blocks.") } },
          },
          ...errorResponses("OFFLOAD_RUN_NOT_FOUND", ...ACCESS_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await authorizeRun(deps, request, id, "get");
      // Watch before the first read, so a change in between is not missed.
      const pending: Run[] = [];
      let wake: (() => void) | undefined;
      const unwatch = deps.notifier.watch(id, (run) => {
        pending.push(run);
        wake?.();
      });
      const first = await getRun(deps.db, id).catch((err: unknown) => {
        unwatch();
        throw err;
      });
      if (!first) {
        unwatch();
        throw notFound(id);
      }

      const res = openEventStream(reply);
      const gone = new AbortController();
      res.once("close", () => gone.abort());
      const signal = AbortSignal.any([gone.signal, deps.closing]);
      let seq = 0;
      const send = (run: Run): void => {
        res.write(`id: ${++seq}\nevent: state\ndata: ${JSON.stringify(run)}\n\n`);
      };
      const sendProgress = (progress: RunProgress): void => {
        const data: RunProgressEvent = { runId: id, progress };
        res.write(`id: ${++seq}\nevent: progress\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.keepAliveMs ?? 15_000);
      try {
        res.write("retry: 2000\n\n");
        let last = first;
        send(last);
        if (last.progress) sendProgress(last.progress);
        while (!isTerminal(last.state) && !signal.aborted) {
          if (pending.length === 0) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(done, deps.recheckMs);
              signal.addEventListener("abort", done, { once: true });
              wake = done;
              function done(): void {
                clearTimeout(timer);
                signal.removeEventListener("abort", done);
                wake = undefined;
                resolve();
              }
            });
          }
          if (signal.aborted) break;
          const candidates = pending.length ? pending.splice(0) : [await getRun(deps.db, id)];
          for (const run of candidates) {
            if (!run) continue;
            const stateNews = isNews(last, run);
            const progressNews = isProgressNews(last, run, stateNews);
            if (!stateNews && !progressNews) continue;
            last = run;
            // The last report comes before the outcome that ends the stream, as the task made it.
            if (progressNews && isTerminal(run.state)) sendProgress(run.progress);
            if (stateNews) send(run);
            if (progressNews && !isTerminal(run.state)) sendProgress(run.progress);
            if (isTerminal(run.state)) break;
          }
        }
      } catch (err) {
        request.log.warn({ err, runId: id }, "run event stream failed");
      } finally {
        clearInterval(keepAlive);
        unwatch();
        res.end();
      }
    },
  );
}
