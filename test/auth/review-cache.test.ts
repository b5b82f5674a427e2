/**
 * The run API's TokenReview and SubjectAccessReview verdicts are kept for a
 * short time and in bounded number: counted on the stand-in's request log,
 * with a clock the test advances by hand (so nothing here waits or depends on
 * how fast the machine is).
 */
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KubernetesAuth } from "../../operator/src/api/auth/kubernetes.js";
import { startFakeKube, type FakeKube } from "../k8s/index.js";

const AUDIENCE = "offload";
const TTL_MS = 10_000;
const MAX = 3;

let fake: FakeKube;
const clock = { t: 1_000_000, now: () => clock.t };
let auth: KubernetesAuth;

const reviews = (kind: "tokenreviews" | "subjectaccessreviews"): number => fake.requests.filter((r) => r.method === "POST" && r.path.endsWith(`/${kind}`)).length;

beforeAll(async () => {
  fake = await startFakeKube();
  fake.ensureNamespace("a");
  for (const name of ["app", "one", "two", "three", "four"]) {
    fake.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: "a" } });
  }
});
afterAll(async () => {
  await fake?.close();
});
beforeEach(() => {
  // A fresh cache per test, so counts start from nothing.
  auth = new KubernetesAuth(fake.kubeConfig(), { audience: AUDIENCE, cacheTtlMs: TTL_MS, cacheMaxEntries: MAX, clock }, pino({ level: "silent" }));
});

describe("the TokenReview cache", () => {
  it("asks once within the TTL, once more after it, and keeps refusals too", async () => {
    const token = fake.issueToken("a", "app", { audiences: [AUDIENCE] });
    const before = reviews("tokenreviews");
    const first = await auth.authenticate(token);
    expect(first).toMatchObject({ kind: "kubernetes", username: "system:serviceaccount:a:app", namespace: "a" });
    expect(await auth.authenticate(token)).toEqual(first);
    expect(reviews("tokenreviews")).toBe(before + 1);

    clock.t += TTL_MS + 1;
    expect(await auth.authenticate(token)).toEqual(first);
    expect(reviews("tokenreviews")).toBe(before + 2);

    const wrongAudience = fake.issueToken("a", "app", { audiences: ["someone-else"] });
    const refused = await auth.authenticate(wrongAudience);
    expect(refused).toHaveProperty("rejected");
    expect(await auth.authenticate(wrongAudience)).toEqual(refused);
    expect(reviews("tokenreviews")).toBe(before + 3);
  });

  it("holds at most its bound: more distinct tokens evict the least recently used", async () => {
    const tokens = ["one", "two", "three", "four"].map((sa) => fake.issueToken("a", sa, { audiences: [AUDIENCE] }));
    const before = reviews("tokenreviews");
    for (const t of tokens) await auth.authenticate(t);
    expect(reviews("tokenreviews")).toBe(before + 4);
    // The newest three are kept...
    for (const t of tokens.slice(1)) await auth.authenticate(t);
    expect(reviews("tokenreviews")).toBe(before + 4);
    // ...and the first one, evicted by the fourth, is reviewed again.
    await auth.authenticate(tokens[0]!);
    expect(reviews("tokenreviews")).toBe(before + 5);
  });

  it("never keeps an accepted token past its expiry, however long the TTL", async () => {
    const long = new KubernetesAuth(fake.kubeConfig(), { audience: AUDIENCE, cacheTtlMs: 300_000, cacheMaxEntries: MAX, clock }, pino({ level: "silent" }));
    // Issued 595 s ago for 600 s: 5 s left.
    const token = fake.issueToken("a", "app", { audiences: [AUDIENCE], expirationSeconds: 600, issuedAt: new Date(Date.now() - 595_000) });
    const before = reviews("tokenreviews");
    await long.authenticate(token);
    await long.authenticate(token);
    expect(reviews("tokenreviews")).toBe(before + 1);
    clock.t += 6_000;
    await long.authenticate(token);
    expect(reviews("tokenreviews")).toBe(before + 2);
  });

  it("refuses a token that is not a JWT, or whose exp has passed, without asking", async () => {
    const expired = fake.issueToken("a", "app", { audiences: [AUDIENCE], expirationSeconds: 600, issuedAt: new Date(Date.now() - 700_000) });
    const before = reviews("tokenreviews");
    expect(await auth.authenticate("not-a-jwt")).toEqual({ rejected: expect.stringMatching(/not a ServiceAccount token/) });
    expect(await auth.authenticate(expired)).toEqual({ rejected: expect.stringMatching(/expired/) });
    expect(reviews("tokenreviews")).toBe(before);
  });
});

describe("the SubjectAccessReview cache", () => {
  it("asks once per user, namespace and verb within the TTL, again after it", async () => {
    const caller = await auth.authenticate(fake.issueToken("a", "app", { audiences: [AUDIENCE] }));
    if ("rejected" in caller) throw new Error(caller.rejected);
    const before = reviews("subjectaccessreviews");
    expect(await auth.allowed(caller, "create", "a")).toBe(false);
    expect(await auth.allowed(caller, "create", "a")).toBe(false);
    expect(reviews("subjectaccessreviews")).toBe(before + 1);
    await auth.allowed(caller, "get", "a");
    await auth.allowed(caller, "create", "b");
    expect(reviews("subjectaccessreviews")).toBe(before + 3);
    clock.t += TTL_MS + 1;
    await auth.allowed(caller, "create", "a");
    expect(reviews("subjectaccessreviews")).toBe(before + 4);
  });
});
