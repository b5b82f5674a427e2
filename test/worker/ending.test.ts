import { describe, expect, it } from "vitest";
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
    expect(errorOf(new PaymentDeclined("no funds"))).toEqual({ type: "PaymentDeclined", message: "no funds" });
    expect(errorOf(new Error("bad\u0000byte")).message).toBe("bad\uFFFDbyte");
    expect(errorOf("plain string")).toEqual({ type: "Error", message: "plain string" });
  });
});
