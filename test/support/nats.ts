import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canConnect, freePort, waitFor } from "./ports.js";
import { startProcess, type Child } from "./process.js";

/** A real nats-server with JetStream in a temporary folder on a free loopback port. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly child: Child;
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "offload-nats-"));
  let port: number;
  let child: Child | undefined;
  try {
    port = await freePort();
    const conf = join(dir, "nats.conf");
    await writeFile(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, "js")}" }\n`);
    child = startProcess("nats-server", process.env.NATS_SERVER_BIN ?? "nats-server", ["-c", conf]);
    // The log line first: a server that exits at once (a bad binary, a bad config) fails here without waiting.
    await child.waitForOutput("Server is ready", 15_000);
    await waitFor(`nats-server on ${port}`, () => canConnect(port), 10_000);
  } catch (err) {
    // A failed start must not leave a server (or its folder) behind.
    await child?.stop(5000);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    child,
    async stop() {
      await child.stop(5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
