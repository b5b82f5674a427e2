import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { RUN_STATES, isTerminal, type RunState } from "@offload/sdk";
import { ROOT, freePort, killAll, startProcess, startStack, stopSharedPostgres, waitFor, type Child, type Stack } from "../support/index.js";

// What every user starts from: the example app, driven over HTTP like a browser or curl would.
describe("the example web app", () => {
  let stack: Stack;
  let app: Child;
  let appUrl: string;
  beforeAll(async () => {
    stack = await startStack({ token: "s3cret-token" });
    await stack.startWorker({ module: join(ROOT, "examples/app/dist/tasks.js") });
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    app = startProcess("web-app", process.execPath, [join(ROOT, "examples/app/dist/web-app/main.js")], {
      PORT: String(port),
      OFFLOAD_API_URL: stack.apiUrl,
      OFFLOAD_API_TOKEN: "s3cret-token",
    });
    await waitFor("the web app", async () => (await fetch(`${appUrl}/jobs/x/status`)).status > 0);
  });
  afterAll(async () => {
    await app?.stop();
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
  });

  it("POST /jobs answers 202 with a run id, and GET /jobs/:id/status reports the result", async () => {
    const res = await fetch(`${appUrl}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "welcome-email", to: "ada@example.com", name: "Ada" }),
    });
    expect(res.status).toBe(202);
    const { id, status } = (await res.json()) as { id: string; status: string };
    expect(status).toBe(`/jobs/${id}/status`);

    // Every state the app reported, in order.
    const seen: string[] = [];
    const final = await waitFor("the job to report its result", async () => {
      const s = (await (await fetch(appUrl + status)).json()) as { state: string; result: unknown };
      seen.push(s.state);
      return s.state === "COMPLETED" ? s : undefined;
    });
    // Each is a run state; the last is COMPLETED, and none before it was terminal.
    for (const state of seen) expect(RUN_STATES).toContain(state);
    expect(seen.at(-1)).toBe("COMPLETED");
    expect(seen.slice(0, -1).filter((state) => isTerminal(state as RunState))).toEqual([]);
    expect(final.result).toMatchObject({ to: "ada@example.com", subject: "Welcome, Ada!" });
    expect((final.result as { messageId: string }).messageId).toMatch(/^[0-9a-f]{16}$/);
  });

  it("says which field is wrong, and 404 for an unknown job", async () => {
    const res = await fetch(`${appUrl}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "welcome-email", to: "nope", name: "Ada" }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('"path":"to"');
    expect((await fetch(`${appUrl}/jobs/00000000-0000-4000-8000-000000000000/status`)).status).toBe(404);
  });
});
