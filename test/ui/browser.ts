/**
 * Debian's chromium, headless, driven by playwright-core (never a downloaded
 * browser). Each launch gets a fresh profile folder; the flags keep Chromium
 * off the network it would otherwise reach for (updates, sync, field trials):
 * on the test machines those connections are refused many at a time.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { ROOT } from "../support/index.js";

export const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where the screenshots go: kept as test artifacts, ignored by git. */
export const SHOTS = join(ROOT, "test-results/ui");

export interface Browser {
  context: BrowserContext;
  /** Saves a full-page screenshot of `page` as `<name>.png` under {@link SHOTS}. */
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "offload-chromium-"));
  await mkdir(SHOTS, { recursive: true });
  let context: BrowserContext;
  try {
    // A persistent context is the way to give Chromium a --user-data-dir of our own.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 900 },
      timeout: 30_000,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    shot: async (page, name) => void (await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })),
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
