import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePort, waitFor } from "./ports.js";
import { startProcess, type Child } from "./process.js";

/** A real nats-server with JetStream in a temporary folder on a free loopback port. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The running nats-server process (a new one after {@link NatsServer.restart}). */
  readonly child: Child;
  /**
   * Stops nats-server (SIGTERM), runs `whileDown`, then starts it again on the
   * same port with the same JetStream store, so streams and consumers survive
   * as they would a real restart.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "offload-nats-"));
  let port: number;
  let child: Child | undefined;
  const conf = join(dir, "nats.conf");
  const launch = async (): Promise<Child> => {
    const c = startProcess("nats-server", process.env.NATS_SERVER_BIN ?? "nats-server", ["-c", conf]);
    child = c;
    // The log line first: a server that exits at once (a bad binary, a bad config) fails here without waiting.
    await c.waitForOutput("Server is ready", 15_000);
    await waitFor(`nats-server on ${port}`, () => canConnect(port), 10_000);
    return c;
  };
  try {
    port = await freePort();
    await writeFile(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, "js")}" }\n`);
    await launch();
  } catch (err) {
    // A failed start must not leave a server (or its folder) behind.
    await child?.stop(5000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get child() {
      return child!;
    },
    async restart(whileDown) {
      await child?.stop(5000);
      try {
        await whileDown?.();
      } finally {
        await launch();
      }
    },
    async stop() {
      await child?.stop(5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
