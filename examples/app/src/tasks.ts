/**
 * The example tasks: what a real app pushes out of its request path. They do
 * no network I/O so that they run anywhere, but they take the shape of real
 * work: an email "sent" after a delay, and a text report computed from input.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { task } from "@offload/sdk";
import { z } from "zod";

/** "Sends" a welcome email: waits like an SMTP call would, returns a message id. */
export const sendWelcomeEmail = task(
  {
    name: "send-welcome-email",
    description: "Sends the welcome email to a new user",
    input: z.object({ to: z.email(), name: z.string().min(1).max(200) }),
    timeoutSeconds: 30,
  },
  async (input, ctx) => {
    ctx.log.info({ to: input.to }, "sending welcome email");
    await sleep(200, undefined, { signal: ctx.signal });
    const messageId = createHash("sha256").update(`${ctx.runId}:${input.to}`).digest("hex").slice(0, 16);
    return { messageId, to: input.to, subject: `Welcome, ${input.name}!` };
  },
);

/** Computes word statistics of a text: the kind of CPU work that does not belong in a request. */
export const textReport = task(
  {
    name: "text-report",
    description: "Counts words and finds the most common ones",
    input: z.object({ text: z.string().max(1_000_000), top: z.number().int().min(1).max(100).default(3) }),
  },
  (input) => {
    const words = input.text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
    const counts = new Map<string, number>();
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, input.top);
    return { words: words.length, distinct: counts.size, top: top.map(([word, count]) => ({ word, count })) };
  },
);
