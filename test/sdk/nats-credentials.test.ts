/**
 * Credentials in NATS URLs (nats://user:pass@host:4222, as the Helm chart gives
 * them): nats.js ignores them in a server URL, so natsServerOptions() moves them
 * into connect()'s user/pass; redactUrl() keeps the password out of logs.
 */
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsConnectOptions, natsServerOptions, natsUrls, redactUrl } from "../../sdk/src/config.js";
import { freePort } from "../support/ports.js";
import { startProcess, type Child } from "../support/process.js";

describe("redactUrl", () => {
  it("masks the password and keeps the rest", () => {
    expect(redactUrl("nats://offload:s3cret@nats.offload.svc:4222")).toBe("nats://offload:***@nats.offload.svc:4222");
    expect(redactUrl("tls://u:p%40ss@h:4222")).toBe("tls://u:***@h:4222");
    expect(redactUrl("nats://u:p@ss@h:4222")).toBe("nats://u:***@h:4222");
    expect(redactUrl("nats://u:@h:4222")).toBe("nats://u:***@h:4222");
  });

  it("masks a token (a user without a password) whole", () => {
    expect(redactUrl("nats://s3cret-token@h:4222")).toBe("nats://***@h:4222");
  });

  it("leaves URLs without credentials unchanged", () => {
    for (const u of ["nats://h:4222", "h:4222", "nats://127.0.0.1:4222", ""]) expect(redactUrl(u)).toBe(u);
  });
});

describe("natsServerOptions", () => {
  it("moves user and password out of the URLs, percent-decoded", () => {
    expect(natsServerOptions(["nats://offload:p%40ss@a:4222", "nats://offload:p%40ss@b:4222"])).toEqual({ servers: ["nats://a:4222", "nats://b:4222"], user: "offload", pass: "p@ss" });
    expect(natsServerOptions("nats://tok@a:4222, nats://b:4222")).toEqual({ servers: ["nats://a:4222", "nats://b:4222"], token: "tok" });
  });

  it("gives URLs without credentials as they are, and no credentials", () => {
    expect(natsServerOptions(["nats://a:4222", "b:4222"])).toEqual({ servers: ["nats://a:4222", "b:4222"] });
  });

  it("refuses URLs with different credentials, without printing the passwords", () => {
    expect(() => natsServerOptions(["nats://u:one@a:4222", "nats://u:two@b:4222"])).toThrow(/different credentials \(nats:\/\/u:\*\*\*@a:4222 and nats:\/\/u:\*\*\*@b:4222\)/);
  });

  it("is what every Offload process connects with, plus its name, endless reconnects and no per-request error traces", () => {
    expect(natsConnectOptions("nats://offload:p%40ss@a:4222", "offload-api")).toEqual({
      servers: ["nats://a:4222"], user: "offload", pass: "p@ss", name: "offload-api", maxReconnectAttempts: -1, noAsyncTraces: true,
    });
  });

  it("the env validation accepts URLs with credentials", () => {
    expect(natsUrls.parse("nats://offload:Ab12@nats.offload.svc:4222,nats://offload:Ab12@n2:4222")).toEqual(["nats://offload:Ab12@nats.offload.svc:4222", "nats://offload:Ab12@n2:4222"]);
  });
});

describe("against a nats-server that requires a user and password", () => {
  let port: number;
  let server: Child;

  beforeAll(async () => {
    port = await freePort();
    server = startProcess("nats-server", process.env.NATS_SERVER_BIN ?? "nats-server", ["-a", "127.0.0.1", "-p", String(port), "--user", "offload", "--pass", "Secr3tPassw0rd"]);
    await server.waitForOutput("Server is ready", 15_000);
  });

  afterAll(async () => {
    await server?.stop(5000);
  });

  const tryConnect = async (opts: Parameters<typeof connect>[0]): Promise<string> => {
    try {
      const nc = await connect({ ...opts, reconnect: false, timeout: 5000 });
      await nc.flush();
      await nc.close();
      return "ok";
    } catch (err) {
      return (err as Error).message;
    }
  };

  it("connects with the credentials from the URL, and not without them", async () => {
    const url = `nats://offload:Secr3tPassw0rd@127.0.0.1:${port}`;
    expect(await tryConnect(natsServerOptions([url]))).toBe("ok");
    // nats.js on its own ignores credentials in the URL: the reason natsServerOptions exists.
    expect(await tryConnect({ servers: url })).toMatch(/Authorization Violation/i);
    expect(await tryConnect(natsServerOptions([`nats://127.0.0.1:${port}`]))).toMatch(/Authorization Violation/i);
    expect(await tryConnect(natsServerOptions([`nats://offload:wrong@127.0.0.1:${port}`]))).toMatch(/Authorization Violation/i);
  });
});
