import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";

/** A publish refused at once because the NATS connection is down; the sweeper publishes the run once it is back. */
export class NatsDisconnectedError extends Error {
  constructor(message = "NATS is disconnected (reconnecting); the sweeper publishes the run once it is back") {
    super(message);
    this.name = "NatsDisconnectedError";
  }
}

/**
 * Follows a NATS connection's status, so that work needing NATS can give up
 * at once while it is down instead of waiting out a request timeout.
 *
 * Why: nats.js keeps a request made just before the server went away waiting
 * for its reply until the timeout (10 s for a publish), although the reply
 * can never come over the new connection; and it buffers new ones while
 * reconnecting. A submission during a one-second restart would then take ten.
 */
export class NatsLink {
  #connected = true;
  #lost = new AbortController();

  constructor(nc: NatsConnection, log: Logger) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect" && this.#connected) {
          this.#connected = false;
          this.#lost.abort(new NatsDisconnectedError());
          log.warn({ server: s.server }, "NATS connection lost; reconnecting (submissions are recorded and published once it is back)");
        } else if (s.type === "reconnect" && !this.#connected) {
          this.#connected = true;
          this.#lost = new AbortController();
          log.info({ server: s.server }, "NATS connection back");
        }
      }
    })().catch((err: unknown) => log.warn({ err }, "stopped following the NATS connection's status"));
    void nc.closed().then(() => {
      this.#connected = false;
      this.#lost.abort(new NatsDisconnectedError("the NATS connection is closed"));
    });
  }

  /** False from a disconnect until the connection is back (and after close). */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Runs every one of `works` and settles each like `Promise.allSettled`,
   * except that while the connection is down each is rejected at once
   * (without being started), and those still pending when the connection is
   * lost are rejected at the loss (they are left to time out on their own).
   * One listener for the whole lot: thousands of publishes share it.
   */
  async settleWhileConnected<T>(works: readonly (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
    if (!this.#connected) {
      const reason = new NatsDisconnectedError();
      return works.map(() => ({ status: "rejected", reason }));
    }
    const lost = this.#lost.signal;
    let onLost: (() => void) | undefined;
    const gone = new Promise<never>((_, reject) => {
      onLost = () => reject(lost.reason as Error);
      lost.addEventListener("abort", onLost, { once: true });
    });
    // Settled by the race below or never read: no rejection of it goes unhandled.
    gone.catch(() => undefined);
    try {
      return await Promise.allSettled(works.map((work) => Promise.race([Promise.resolve().then(work), gone])));
    } finally {
      lost.removeEventListener("abort", onLost!);
    }
  }
}
