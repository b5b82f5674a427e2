import type { Logger } from "pino";
import { isDatabaseUnavailable } from "../store/db.js";

/**
 * The run API's last line of defence, installed by the offload-api entry point
 * for the life of the process (not by `startApi`: a program embedding the API
 * keeps its own process-wide handlers).
 *
 * - An unhandled rejection is logged and the API keeps serving: it is a
 *   promise nobody awaited (a missed `await`, a fire-and-forget call), and
 *   every request and periodic job catches its own errors, so no state is left
 *   half-changed by it.
 * - An uncaught exception caused by a dependency's connection (PostgreSQL
 *   restarting, a socket reset) is logged and the API keeps serving: it comes
 *   from a client or socket that is dead and discarded; the pool opens new ones.
 * - Any other uncaught exception is logged as fatal and the process exits 1,
 *   to be restarted by its supervisor: a synchronous throw that reached the
 *   top may have left any state half-updated, and Node's own advice is not to
 *   resume after one.
 *
 * Answers the function that removes the handlers.
 */
export function installProcessGuards(log: Logger): () => void {
  const onRejection = (reason: unknown): void => {
    log.error({ err: reason }, "unhandled promise rejection; still serving (a bug: please report it with this line)");
  };
  const onException = (err: Error): void => {
    if (isDatabaseUnavailable(err)) {
      log.error({ err }, "a dependency's connection failed outside any request; discarded it, still serving");
      return;
    }
    log.fatal({ err }, "uncaught exception; exiting to be restarted");
    process.exit(1);
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return () => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  };
}
