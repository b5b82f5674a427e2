import { describe, expect, it } from "vitest";
import { MAX_ERROR_STACK, RunErrorSchema } from "../../sdk/src/protocol/index.js";
import { errorOf, toJson } from "../../sdk/src/serve/ending.js";

// What a task returns or throws must become something a run record can hold.
describe("turning a try's ending into what the protocol carries", () => {
  it("refuses a result PostgreSQL's jsonb could never store (U+0000), but not an escaped backslash", () => {
    expect(toJson({ bytes: "a\u0000b" })).toMatchObject({ ok: false, message: expect.stringContaining("U+0000") });
    expect(toJson(["\u0000"])).toMatchObject({ ok: false });
    expect(toJson({ path: "C:\\u0000dir" })).toEqual({ ok: true, text: JSON.stringify({ path: "C:\\u0000dir" }) });
    expect(toJson({ both: "\\\u0000" })).toMatchObject({ ok: false });
  });

  it("keeps results JSON can carry, and says why when it cannot", () => {
    expect(toJson(undefined)).toEqual({ ok: true, text: "null" });
    expect(toJson({ n: 1 })).toEqual({ ok: true, text: '{"n":1}' });
    expect(toJson(() => 1)).toMatchObject({ ok: false, message: expect.stringContaining("not JSON") });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(toJson(cyclic)).toMatchObject({ ok: false, message: expect.stringContaining("cannot be turned into JSON") });
  });

  it("names a thrown error by its class and never carries U+0000 into the record", () => {
    class PaymentDeclined extends Error {}
    expect(errorOf(new PaymentDeclined("no funds"))).toMatchObject({ type: "PaymentDeclined", message: "no funds" });
    expect(errorOf(new Error("bad\u0000byte")).message).toBe("bad\uFFFDbyte");
    expect(errorOf(new Error("bad\u0000byte")).stack).toMatch(/^Error: bad\uFFFDbyte\n/);
    expect(errorOf("plain string")).toEqual({ type: "Error", message: "plain string" });
  });

  it("keeps an Error's stack, naming where it was thrown; a thrown non-Error has none, nor does the worker's own error", () => {
    function chargeCard(): never {
      throw new TypeError("card is undefined");
    }
    let thrown: unknown;
    try {
      chargeCard();
    } catch (err) {
      thrown = err;
    }
    const error = errorOf(thrown);
    expect(error).toMatchObject({ type: "TypeError", message: "card is undefined" });
    expect(error.stack).toMatch(/^TypeError: card is undefined\n\s+at chargeCard \(.*ending\.test\.ts:\d+:\d+\)/);
    expect(RunErrorSchema.parse(error)).toEqual(error);

    expect(errorOf(thrown, { stack: false })).toEqual({ type: "TypeError", message: "card is undefined" });
    expect(errorOf("plain string")).not.toHaveProperty("stack");
    expect(errorOf({ message: "an object, not an Error" })).toEqual({ type: "Error", message: "an object, not an Error" });
    expect(errorOf(42)).toEqual({ type: "Error", message: "42" });
    const odd = new Error("stack replaced");
    Object.defineProperty(odd, "stack", { value: { not: "a string" } });
    expect(errorOf(odd)).toEqual({ type: "Error", message: "stack replaced" });
  });

  it("cuts a huge stack to the bound, keeping its head and saying it was cut", () => {
    // A 50,000-character message makes a 50 KB stack: Node repeats the message on the stack's first line.
    const huge = new RangeError("x".repeat(50_000));
    const stack = errorOf(huge).stack!;
    expect(stack.length).toBeLessThanOrEqual(MAX_ERROR_STACK);
    expect(stack.startsWith("RangeError: xxx")).toBe(true);
    expect(stack).toMatch(new RegExp(`\\n    … \\(the stack was ${huge.stack!.length} characters: cut to ${MAX_ERROR_STACK}\\)$`));

    // Many frames: the cut falls at a line's end, so every kept frame is whole.
    const deep = new Error("deep");
    deep.stack = ["Error: deep", ...Array.from({ length: 400 }, (_, i) => `    at frame${i} (file:///app/tasks/${"nested/".repeat(5)}work.js:${i}:1)`)].join("\n");
    const cut = errorOf(deep).stack!;
    expect(cut.length).toBeLessThanOrEqual(MAX_ERROR_STACK);
    const lines = cut.split("\n");
    expect(lines.slice(0, 3)).toEqual(deep.stack.split("\n").slice(0, 3));
    expect(lines.at(-2)).toMatch(/^ {4}at frame\d+ \(file:\/\/\/app\/tasks\/.*work\.js:\d+:1\)$/);
    expect(lines.at(-1)).toMatch(/^ {4}… \(the stack was \d+ characters: cut to 8192\)$/);

    // A cut never leaves half a surrogate pair (PostgreSQL would refuse it).
    // (one of the two falls mid-pair, whatever the marker's length.)
    for (const message of ["😀".repeat(10_000), `x${"😀".repeat(10_000)}`]) {
      const cutPairs = errorOf(new Error(message)).stack!;
      expect(cutPairs.length).toBeLessThanOrEqual(MAX_ERROR_STACK);
      expect(cutPairs).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    }
    const short = new Error("short");
    expect(errorOf(short).stack).toBe(short.stack);
  });
});
