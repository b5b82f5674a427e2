/**
 * `offload-api`'s start-up contract for the auth settings: a bad setting or no
 * kubeconfig is one line and exit 2, an API server that does not answer is one
 * line naming it and exit 1 after OFFLOAD_START_WAIT_SECONDS.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, killAll, startNats, type NatsServer } from "../support/index.js";
import { API_BIN, run, tempDir } from "../startup/helpers.js";

const LOCAL = { OFFLOAD_API_HOST: "127.0.0.1", OFFLOAD_API_PORT: "0", OFFLOAD_DATABASE_URL: "", OFFLOAD_API_TOKEN: "" };

describe("offload-api with OFFLOAD_AUTH", () => {
  let home: Awaited<ReturnType<typeof tempDir>>;
  let nats: NatsServer | undefined;
  beforeAll(async () => {
    home = await tempDir("offload-auth-home-");
  });
  afterAll(async () => {
    await killAll();
    await nats?.stop();
    await home?.remove();
  });

  it("refuses a mode it does not know, and token without OFFLOAD_API_TOKEN, with exit 2 naming the variable", async () => {
    const bad = await run("api-auth-bad", API_BIN, [], { ...LOCAL, OFFLOAD_AUTH: "jwt", OFFLOAD_NATS_URL: "nats://127.0.0.1:1" });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/OFFLOAD_AUTH: must be one of kubernetes, token, none/);
    const tokenless = await run("api-auth-tokenless", API_BIN, [], { ...LOCAL, OFFLOAD_AUTH: "token", OFFLOAD_NATS_URL: "nats://127.0.0.1:1" });
    expect(tokenless.code).toBe(2);
    expect(tokenless.err).toMatch(/OFFLOAD_AUTH: is token, but OFFLOAD_API_TOKEN is unset/);
  });

  it("kubernetes without a kubeconfig: one line saying where it looked, exit 2, before any wait", async () => {
    const { code, err } = await run(
      "api-auth-nokube",
      API_BIN,
      [],
      { ...LOCAL, OFFLOAD_AUTH: "kubernetes", HOME: home.path, OFFLOAD_NATS_URL: "nats://127.0.0.1:1", OFFLOAD_START_WAIT_SECONDS: "600" },
      ["KUBECONFIG", "KUBERNETES_SERVICE_HOST"],
    );
    expect(code).toBe(2);
    expect(err).toMatch(/^offload-api: no Kubernetes cluster configured: KUBECONFIG is unset, .* does not exist/);
    expect(err).toMatch(/run offload-api in the cluster/);
  });

  it("kubernetes with an API server that does not answer: one line naming it after OFFLOAD_START_WAIT_SECONDS, exit 1", async () => {
    nats = await startNats();
    const server = `http://127.0.0.1:${await freePort()}`;
    const kubeconfig = join(home.path, "kubeconfig");
    await writeFile(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    const { code, err } = await run("api-auth-away", API_BIN, [], {
      ...LOCAL,
      OFFLOAD_AUTH: "kubernetes",
      KUBECONFIG: kubeconfig,
      OFFLOAD_NATS_URL: nats.url,
      OFFLOAD_DATA_DIR: join(home.path, "data"),
      OFFLOAD_START_WAIT_SECONDS: "1",
    });
    expect(code).toBe(1);
    expect(err).toContain(`offload-api: cannot reach the Kubernetes API server at ${server} (context "x", kubeconfig KUBECONFIG=${kubeconfig}) within 1 s`);
  });
});
