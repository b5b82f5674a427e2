import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import type { Run } from "@offload/sdk";
import { readServerSentEvents } from "../../sdk/src/sse.js";
import { killAll, ROOT, startStack, stopSharedPostgres, waitFor, waitForRun, type Stack } from "../support/index.js";
import { launch, type Browser } from "./browser.js";

// The functions given to page.evaluate run in the browser: the few of its globals they use (the test's own types are Node's).
declare const document: { activeElement: unknown; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };
declare const sessionStorage: { setItem(key: string, value: string): void };

const FIXTURES = join(ROOT, "test/cli/fixtures/tasks.mjs");
const TOKEN = "ui-test-token";
// Generous for a loaded 2-core machine; these are upper bounds on waits for the page, never sleeps.
const SEEN = { timeout: 15_000 };

let stack: Stack;
let browser: Browser;
let page: Page;
let dir: string;

const until = (id: string, state: Run["state"]): Promise<Run> => waitForRun(() => stack.client.getRun(id), (r) => r.state === state, `run ${id} to be ${state}`);
const gated = (gate: string): Promise<Run> => stack.client.createRun({ task: "gated", parameters: { dir, gate } });
const open = (gate: string): Promise<void> => writeFile(join(dir, gate), "");
const row = (id: string) => page.locator(`tr[data-run="${id}"]`);

describe("the dashboard at /ui in headless Chromium", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "offload-ui-"));
    [stack, browser] = await Promise.all([startStack({ token: TOKEN }), launch()]);
    await stack.startWorker({ module: FIXTURES, concurrency: 4 });
    // The pages of every test but the token prompt's start with the token in the tab, as after the prompt.
    page = await browser.context.newPage();
    await page.addInitScript((t) => sessionStorage.setItem("offload.apiToken", t), TOKEN);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("asks for the API's token once, refuses a wrong one, and keeps the right one for the tab", async () => {
    // The page's files are open (they hold no data); what it shows needs the token.
    expect((await fetch(`${stack.apiUrl}/ui/`)).status).toBe(200);
    expect((await fetch(`${stack.apiUrl}/ui`, { redirect: "manual" })).headers.get("location")).toBe("/ui/");
    expect((await fetch(`${stack.apiUrl}/v1/overview`)).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/v1/events`)).status).toBe(401);
    const page = await browser.context.newPage();
    await page.goto(`${stack.apiUrl}/ui/`);
    const input = page.getByLabel("API token");
    await input.waitFor(SEEN);
    await expect(input.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await browser.shot(page, "token-prompt");
    await input.fill("not-the-token");
    await input.press("Enter");
    await page.getByRole("alert").filter({ hasText: "refused the token" }).waitFor(SEEN);
    await page.getByLabel("API token").fill(TOKEN);
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor(SEEN);
    // Kept for the tab: a reload asks no more.
    await page.reload();
    await page.getByRole("heading", { name: "Overview" }).waitFor(SEEN);
    expect(await page.getByLabel("API token").count()).toBe(0);
    await page.close();
  });

  it("the overview: per task, the last hour's completed and failed, the throughput chart and the workers", async () => {
    const added = await Promise.all([1, 2, 3].map((a) => stack.client.createRun({ task: "add", parameters: { a, b: 1 } })));
    const failed = await stack.client.createRun({ task: "boom", parameters: { message: "overview" } });
    await Promise.all([...added.map((r) => until(r.id, "COMPLETED")), until(failed.id, "FAILED")]);
    await page.goto(`${stack.apiUrl}/ui/#/`);
    const add = page.locator('tr[data-task="add"]');
    await add.locator('[data-col="completed"]', { hasText: /^3$/ }).waitFor(SEEN);
    await page.locator('tr[data-task="boom"] [data-col="failed"]', { hasText: /^1$/ }).waitFor(SEEN);
    expect(await add.locator('[data-col="workers"]').innerText()).toMatch(/^1 \(4 slots\)/);
    expect(await page.locator("figure.chart svg rect.bar-completed").count()).toBeGreaterThan(0);
    await page.getByText(/^1 worker, \d+ run\(s\) in flight/).waitFor(SEEN);
    await browser.shot(page, "overview");

    // Readable on a phone: nothing wider than the screen but the tables' own scroll boxes.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await browser.shot(page, "overview-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("the runs list updates live as a run starts and completes", async () => {
    await page.goto(`${stack.apiUrl}/ui/#/runs?task=gated`);
    await page.getByRole("heading", { name: "Runs" }).waitFor(SEEN);
    const run = await gated("list");
    await row(run.id).and(page.locator('[data-state="RUNNING"]')).waitFor(SEEN);
    await browser.shot(page, "runs-running");
    await open("list");
    await row(run.id).and(page.locator('[data-state="COMPLETED"]')).waitFor(SEEN);
    // Filters are real controls with labels, and change the list.
    await page.getByLabel("State").selectOption("FAILED");
    await page.getByText("No runs match.").waitFor(SEEN);
    await browser.shot(page, "runs-filtered");
  });

  it("a run's page: parameters, progress, its logs as they come, the timeline and the result", async () => {
    const run = await gated("detail");
    await until(run.id, "RUNNING");
    await page.goto(`${stack.apiUrl}/ui/#/runs/${run.id}`);
    await page.locator("ol.logs li", { hasText: "started" }).waitFor(SEEN);
    await page.locator(".run-progress", { hasText: "50% 1/2 halfway" }).waitFor(SEEN);
    expect(await page.locator("#parameters-title + pre").innerText()).toContain('"gate": "detail"');
    await browser.shot(page, "run-running");
    await open("detail");
    await page.locator("ol.logs li", { hasText: "gate open" }).waitFor(SEEN);
    await page.locator(".run-head .state", { hasText: "COMPLETED" }).waitFor(SEEN);
    expect(await page.locator("#result-title + pre").innerText()).toContain('"gate": "detail"');
    expect(await page.locator("ol.timeline").innerText()).toMatch(/created[\s\S]*COMPLETED/);
    await browser.shot(page, "run-completed");
  });

  it("Cancel on a running run says what it did, and the run ends CANCELLED", async () => {
    const run = await gated("never");
    await until(run.id, "RUNNING");
    await page.goto(`${stack.apiUrl}/ui/#/runs/${run.id}`);
    const cancel = page.getByRole("button", { name: "Cancel run" });
    await page.locator(".run-head .state", { hasText: "RUNNING" }).waitFor(SEEN);
    await cancel.focus();
    await page.keyboard.press("Enter");
    await page.getByRole("status").filter({ hasText: /^(Cancelled: the run is CANCELLED|Asked its worker to stop the run)/ }).waitFor(SEEN);
    await page.locator(".run-head .state", { hasText: "CANCELLED" }).waitFor(SEEN);
    expect(await cancel.isDisabled()).toBe(true);
    await browser.shot(page, "run-cancelled");
  });

  it("Retry on a failed run says what it did; the error is shown, and the retry runs", async () => {
    const run = await stack.client.createRun({ task: "boom", parameters: { message: "disk full" } });
    await until(run.id, "FAILED");
    await page.goto(`${stack.apiUrl}/ui/#/runs/${run.id}`);
    await page.locator("#error-title ~ .problem", { hasText: "Error: disk full" }).waitFor(SEEN);
    // Its stack too, naming the task's module where it threw.
    expect(await page.locator("#error-title ~ pre.stack").textContent()).toMatch(/^Error: disk full\n\s+at .*cli\/fixtures\/tasks\.mjs:\d+:\d+/);
    await browser.shot(page, "run-failed");
    await page.getByRole("button", { name: "Retry run" }).click();
    await page.getByRole("status").filter({ hasText: /^Retried: the run is PENDING again and attempt 2/ }).waitFor(SEEN);
    await waitForRun(() => stack.client.getRun(run.id), (r) => r.state === "FAILED" && r.attempts === 2, "the retry to fail again");
    await page.locator(".run-head", { hasText: "attempt 2" }).waitFor(SEEN);
    await browser.shot(page, "run-retried");
  });

  it("the routes behind it: /v1/events carries each change of any run; /v1/overview's throughput adds up", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const stop = new AbortController();
    const res = await fetch(`${stack.apiUrl}/v1/events?task=add`, { headers: auth, signal: stop.signal });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const seen: Run[] = [];
    const reading = (async () => {
      for await (const e of readServerSentEvents(res.body!)) {
        if (e.event !== "run") continue;
        const run = JSON.parse(e.data) as Run;
        seen.push(run);
        if (run.state === "COMPLETED") return run;
      }
    })();
    const run = await stack.client.createRun({ task: "add", parameters: { a: 40, b: 2 } });
    const done = await reading;
    stop.abort();
    expect(done).toMatchObject({ id: run.id, state: "COMPLETED", result: { sum: 42 } });
    expect(seen.every((r) => r.task === "add")).toBe(true);

    const overview = (await (await fetch(`${stack.apiUrl}/v1/overview?windowSeconds=600&buckets=10`, { headers: auth })).json()) as {
      bucketSeconds: number;
      tasks: { name: string; completed: number; failed: number }[];
      throughput: { completed: number; failed: number }[];
    };
    expect(overview.bucketSeconds).toBe(60);
    const sum = (k: "completed" | "failed", xs: { completed: number; failed: number }[]): number => xs.reduce((n, x) => n + x[k], 0);
    expect(sum("completed", overview.throughput)).toBe(sum("completed", overview.tasks));
    expect(sum("failed", overview.throughput)).toBe(sum("failed", overview.tasks));
    expect(overview.tasks.find((t) => t.name === "add")?.completed).toBeGreaterThanOrEqual(1);
    const bad = await fetch(`${stack.apiUrl}/v1/overview?buckets=0`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe("OFFLOAD_VALIDATION");
  });

  it("a run held by its task's limit: the run page says what it waits for until it starts, the list marks it, the overview shows each task's limits", async () => {
    const gate = "held-ui";
    const params = { dir, gate, tenant: "globex" };
    const first = await stack.client.createRun({ task: "held", parameters: params, concurrencyKey: "globex" });
    await until(first.id, "RUNNING");
    const held = await stack.client.createRun({ task: "held", parameters: params, concurrencyKey: "globex", priority: 2 });
    await waitForRun(() => stack.client.getRun(held.id), (r) => r.waitingFor !== null, "the second run to wait for the tenant's slot");

    await page.goto(`${stack.apiUrl}/ui/#/runs?task=held`);
    await row(held.id).and(page.locator('[data-waiting="concurrency"]')).waitFor(SEEN);
    expect(await row(held.id).innerText()).toContain("waiting: concurrency");
    expect(await row(first.id).getAttribute("data-waiting")).toBeNull();
    await browser.shot(page, "runs-held");

    await page.goto(`${stack.apiUrl}/ui/#/runs/${held.id}`);
    const waiting = page.getByTestId("waiting-for");
    await waiting.filter({ hasText: 'Waiting for concurrency limit 1 of key "globex" (1 running)' }).waitFor(SEEN);
    expect(await page.getByTestId("run-priority").innerText()).toBe("2");
    expect(await page.getByTestId("run-concurrency-key").innerText()).toBe("globex");
    expect(await page.getByTestId("run-rate-limit-key").count()).toBe(0);
    expect(await page.locator("ol.timeline").innerText()).toContain('held by the concurrency limit of key "globex"');
    await browser.shot(page, "run-held");
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await browser.shot(page, "run-held-phone");
    await page.setViewportSize({ width: 1280, height: 900 });

    // The slot frees: the page, still open, sees the run start and finish, and the reason go.
    await open(gate);
    await page.locator(".run-head .state", { hasText: "COMPLETED" }).waitFor(SEEN);
    expect(await waiting.count()).toBe(0);
    // A run quicker than the worker's RUNNING delay (100 ms) reports only its outcome, so RUNNING may not show.
    expect(await page.locator("ol.timeline").innerText()).toMatch(/held by the concurrency limit[\s\S]*(RUNNING \(attempt 1\)[\s\S]*)?COMPLETED \(attempt 1\)/);

    // A task no worker registered says so (its run recorded all the same, then cancelled: nothing serves it).
    const stray = await stack.client.createRun({ task: "nobody-serves-ui", parameters: {} });
    await stack.client.cancelRun(stray.id);
    await page.goto(`${stack.apiUrl}/ui/#/`);
    await page.locator('tr[data-task="held"] [data-col="limits"]', { hasText: "at most 1 running per key; at most 100 starts per 60 s" }).waitFor(SEEN);
    expect(await page.locator('tr[data-task="add"] [data-col="limits"]').innerText()).toBe("no limits");
    await page.locator('tr[data-task="nobody-serves-ui"] [data-col="limits"]', { hasText: "not registered" }).waitFor(SEEN);
    await browser.shot(page, "overview-limits");
  });

  it("the Schedules page: each schedule's cron, zone, policy, suspension, last and next time, and a link to the run it started", async () => {
    await stack.client.putSchedule("ui-fast", { task: "add", schedule: "*/2 * * * * *", parameters: { a: 2, b: 3 } });
    await stack.client.putSchedule("ui-paused", { task: "add", schedule: "0 3 * * *", timeZone: "Europe/Paris", concurrencyPolicy: "Forbid", suspend: true });
    try {
      // Once it has fired, the page's first read shows the run (rather than its re-read 5 s on).
      await waitFor("the schedule to start a run", async () => (await stack.client.getSchedule("ui-fast")).lastRunId ?? undefined, 15_000, 200);
      await page.goto(`${stack.apiUrl}/ui/#/schedules`);
      await page.getByRole("heading", { name: "Schedules" }).waitFor(SEEN);
      const fast = page.locator('tr[data-schedule="ui-fast"]');
      const runLink = fast.locator('[data-col="last-run"] a');
      await runLink.waitFor(SEEN);
      expect(await fast.locator('[data-col="schedule"]').innerText()).toBe("*/2 * * * * *");
      const paused = page.locator('tr[data-schedule="ui-paused"]');
      expect(await paused.innerText()).toMatch(/Europe\/Paris\s+Forbid\s+suspended/);
      expect(await paused.locator('[data-col="next"]').innerText()).toBe("-");
      await browser.shot(page, "schedules");
      await page.setViewportSize({ width: 390, height: 844 });
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await browser.shot(page, "schedules-phone");
      await page.setViewportSize({ width: 1280, height: 900 });

      // By keyboard: the link to the last run opens that run, one the schedule started.
      await runLink.focus();
      await page.keyboard.press("Enter");
      await page.getByTestId("run-task").filter({ hasText: "add" }).waitFor(SEEN);
      const shownId = await page.locator("h1 code.run-id").innerText();
      expect((await stack.client.getRun(shownId)).idempotencyKey).toMatch(/^schedule:ui-fast:/);
    } finally {
      await Promise.all(["ui-fast", "ui-paused"].map((key) => stack.client.deleteSchedule(key).catch(() => undefined)));
    }
  });

  it("the workers: id, tasks, runs in flight and last heartbeat", async () => {
    await page.goto(`${stack.apiUrl}/ui/#/workers`);
    const worker = page.locator("table.workers tbody tr").first();
    await worker.waitFor(SEEN);
    const text = await worker.innerText();
    expect(text).toMatch(/add, boom, gated/);
    expect(text).toMatch(/\d+ \/ 4/);
    expect(text).toMatch(/just now|\d+s ago/);
    await browser.shot(page, "workers");
  });
});
