// The parameter check and the in-memory registry, in-process: what a worker's zod input becomes as JSON Schema, and
// what the run API answers for parameters that break it. (Registration over NATS and the database: registration.test.ts.)
import type { RegisteredTask } from "@offload/sdk/internal";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { TaskDefinitions } from "../../operator/src/registry/registry.js";
import { taskDefinition } from "../../sdk/src/definition.js";
import type { Db } from "../../operator/src/store/db.js";
import { compileParameterCheck, InputSchemaError } from "../../operator/src/registry/validate.js";

/** The input schema exactly as the SDK registers it. */
const registered = (input: z.ZodType): Record<string, unknown> => taskDefinition({ name: "t", input }).inputSchema!;

describe("checking parameters against a registered input schema", () => {
  it("names every broken field by its path from the body's root, nested objects and arrays too", () => {
    const check = compileParameterCheck(
      registered(z.object({ tenant: z.string(), lines: z.array(z.object({ sku: z.string(), qty: z.number().int().positive() })) })),
    );
    expect(check({ tenant: "acme", lines: [{ sku: "a", qty: 1 }] }, "parameters")).toEqual([]);
    expect(check({ lines: [{ sku: "a", qty: 1 }, { qty: 1.5 }] }, "runs.3.parameters")).toEqual([
      { path: "runs.3.parameters.tenant", message: "is required" },
      { path: "runs.3.parameters.lines.1.sku", message: "is required" },
      { path: "runs.3.parameters.lines.1.qty", message: "must be integer" },
    ]);
    expect(check("not an object", "parameters")).toEqual([{ path: "parameters", message: "must be object" }]);
  });

  it("names unknown fields of a strict input, and says a format rather than zod's pattern for it", () => {
    const check = compileParameterCheck(registered(z.strictObject({ email: z.email(), id: z.uuid() })));
    expect(check({ email: "nobody", id: "x", extra: 1 }, "parameters")).toEqual([
      { path: "parameters.extra", message: "is not a field of the task's input" },
      { path: "parameters.email", message: "must be a valid email" },
      { path: "parameters.id", message: "must be a valid uuid" },
    ]);
  });

  it("unescapes keys that hold / or ~ (JSON Pointer), and takes a field with a default as optional", () => {
    const check = compileParameterCheck(registered(z.object({ tags: z.record(z.string(), z.number()), pages: z.number().default(1) })));
    expect(check({ tags: { "a/b~c": "x" } }, "parameters")).toEqual([{ path: "parameters.tags.a/b~c", message: "must be number" }]);
  });

  it("reads zod's regular expressions as zod does (not in unicode mode), and ignores keywords it does not know", () => {
    const check = compileParameterCheck(registered(z.object({ code: z.string().regex(new RegExp(String.raw`^a\-b$`)).meta({ "x-owner": "billing" }) })));
    expect(check({ code: "a-b" }, "parameters")).toEqual([]);
    expect(check({ code: "ab" }, "parameters")[0]!.path).toBe("parameters.code");
  });

  it("says what a union, an enum or a literal takes, and speaks of the form of a union the caller meant", () => {
    const plain = compileParameterCheck(
      registered(z.object({ a: z.union([z.string(), z.number()]), b: z.string().nullable(), c: z.enum(["x", "y"]), d: z.literal(3) })),
    );
    expect(plain({ a: true, b: 1, c: "z", d: 4 }, "parameters")).toEqual([
      { path: "parameters.a", message: "must be string or number" },
      { path: "parameters.b", message: "must be string or null" },
      { path: "parameters.c", message: 'must be one of "x", "y"' },
      { path: "parameters.d", message: "must be 3" },
    ]);
    const kinds = compileParameterCheck(
      registered(z.discriminatedUnion("kind", [z.object({ kind: z.literal("a"), x: z.string() }), z.object({ kind: z.literal("b"), y: z.number() })])),
    );
    // Kind "a": only what is wrong with an "a", not that a "b" would need a y.
    expect(kinds({ kind: "a", x: 1 }, "parameters")).toEqual([{ path: "parameters.x", message: "must be string" }]);
    expect(kinds({ kind: "c" }, "parameters")).toEqual([{ path: "parameters.kind", message: 'must be one of "a", "b"' }]);
    // A nullable object that is not null: what is wrong inside it, not that it is not null.
    const nullable = compileParameterCheck(registered(z.object({ n: z.object({ a: z.string() }).nullable() })));
    expect(nullable({ n: { a: 1 } }, "parameters")).toEqual([{ path: "parameters.n.a", message: "must be string" }]);
  });

  it("takes every value the task's zod input takes: decimal multiples, coerced, caught and preprocessed fields, flagged regexes", () => {
    const input = z.object({
      amount: z.number().multipleOf(0.01),
      count: z.coerce.number(),
      mode: z.enum(["a", "b"]).catch("a"),
      pages: z.preprocess((v) => Number(v), z.number()),
      code: z.string().regex(/^[a-z]+$/i),
      word: z.string().regex(/^\p{L}+$/u).max(10),
      face: z.emoji(),
    });
    const value = { amount: 0.07, count: "5", mode: "other", pages: "3", code: "ABC", word: "héllo", face: "😀" };
    expect(input.safeParse(value).success).toBe(true);
    const check = compileParameterCheck(registered(input));
    expect(check(value, "parameters")).toEqual([]);
    const { mode: _caught, ...withoutMode } = value;
    expect(input.safeParse(withoutMode).success).toBe(true);
    expect(check(withoutMode, "parameters")).toEqual([]);
    // Loosened only where zod is looser: the rest still holds (a flagged regex keeps its length, a multiple its step).
    expect(check({ ...value, amount: 0.075, word: "x".repeat(11) }, "parameters")).toEqual([
      { path: "parameters.amount", message: "must be multiple of 0.01" },
      { path: "parameters.word", message: "must NOT have more than 10 characters" },
    ]);
  });

  it("refuses a schema of another draft or one that is no JSON Schema, saying why", () => {
    expect(() => compileParameterCheck({ $schema: "http://json-schema.org/draft-07/schema#", type: "object" })).toThrow(InputSchemaError);
    expect(() => compileParameterCheck({ $schema: "http://json-schema.org/draft-07/schema#" })).toThrow(/draft-07.*2020-12/);
    expect(() => compileParameterCheck({ type: "nope" })).toThrow(/not a valid JSON Schema: inputSchema\/type/);
    expect(() => compileParameterCheck({ $ref: "#/$defs/missing" })).toThrow(/cannot use|can use/);
  });
});

describe("the in-memory task registry", () => {
  // apply() and the reads are memory only; a database that answers nothing proves they never ask it.
  const noDb = { kind: "postgres", failure: undefined, query: () => Promise.reject(new Error("no database here")) } as unknown as Db;
  const log = pino({ level: "silent" });
  const definition = (name: string, at: string, extra: Partial<RegisteredTask> = {}): RegisteredTask => ({
    name,
    retries: 0,
    inputSchema: registered(z.object({ tenant: z.string() })),
    registeredAt: at,
    registeredBy: "w1",
    ...extra,
  });

  it("tells listeners of a changed definition only (not of the same one registered again), and keeps limited() current", () => {
    const registry = new TaskDefinitions(noDb, log);
    const heard: string[] = [];
    registry.onChange((task) => heard.push(task));
    expect(registry.apply([definition("a", "2026-01-01T00:00:00Z"), definition("b", "2026-01-01T00:00:00Z", { concurrency: { limit: 2, keyed: true } })])).toEqual(["a", "b"]);
    expect([...registry.limited()]).toEqual(["b"]);
    expect(registry.apply([definition("a", "2026-01-01T00:00:05Z", { registeredBy: "w2" })])).toEqual([]);
    expect(registry.get("a")?.registeredBy).toBe("w2");
    registry.apply([definition("a", "2026-01-01T00:00:06Z", { rateLimit: { limit: 1, periodSeconds: 1, keyed: false } })]);
    expect([...registry.limited()].sort()).toEqual(["a", "b"]);
    expect(heard).toEqual(["a", "b", "a"]);
  });

  it("keeps a newer definition over an older one that arrives late, and checks parameters with the one it keeps", () => {
    const registry = new TaskDefinitions(noDb, log);
    registry.apply([definition("t", "2026-01-01T00:00:10Z", { inputSchema: registered(z.object({ n: z.number() })) })]);
    registry.apply([definition("t", "2026-01-01T00:00:09Z")]);
    expect(registry.checkParameters("t", { n: 1 }, "parameters")).toEqual({ registered: true, issues: [] });
    expect(registry.checkParameters("t", { n: "1" }, "parameters")).toEqual({ registered: true, issues: [{ path: "parameters.n", message: "must be number" }] });
    expect(registry.checkParameters("other", { n: 1 }, "parameters")).toEqual({ registered: false });
    // Without parameters the worker decides: an input optional at the top level has no JSON Schema form for "nothing".
    expect(registry.checkParameters("t", undefined, "parameters")).toEqual({ registered: true, issues: [] });
  });
});
