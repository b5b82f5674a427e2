import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { TaskMessageSchema, parseTaskMessage, quickTaskMessage } from "../../sdk/src/protocol/index.js";

// The worker reads every task message with a hand-written check before zod: it must never accept what the schema refuses,
// nor read a message differently.
const valid = { runId: "0b8f3c2e-6c1d-4a57-9d0e-3f2a1b4c5d6e", task: "resize-image", parameters: { w: 10, tags: ["a"] }, attemptsBefore: 0, dispatch: 0 };
const cases: [string, unknown][] = [
  ["a plain message", valid],
  ["null parameters", { ...valid, parameters: null }],
  ["a timeout", { ...valid, timeoutSeconds: 2.5 }],
  ["a trace context", { ...valid, traceContext: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` } }],
  ["extra fields", { ...valid, extra: 1 }],
  ["no parameters", { ...valid, parameters: undefined }],
  ["a numeric run id", { ...valid, runId: 7 }],
  ["an upper-case task", { ...valid, task: "Resize" }],
  ["an empty task", { ...valid, task: "" }],
  ["a 65-character task", { ...valid, task: "a".repeat(65) }],
  ["a fractional attemptsBefore", { ...valid, attemptsBefore: 1.5 }],
  ["a negative dispatch", { ...valid, dispatch: -1 }],
  ["a string dispatch", { ...valid, dispatch: "0" }],
  ["a zero timeout", { ...valid, timeoutSeconds: 0 }],
  ["a string timeout", { ...valid, timeoutSeconds: "5" }],
  ["a bad trace context", { ...valid, traceContext: { traceparent: "nope" } }],
  ["an array", [valid]],
  ["null", null],
];

describe("reading a task message in the worker", () => {
  it.each(cases)("reads %s exactly as the schema does", (_name, raw) => {
    const text = JSON.stringify(raw);
    const schema = TaskMessageSchema.safeParse(JSON.parse(text));
    if (schema.success) expect(parseTaskMessage(text)).toEqual(schema.data);
    else expect(() => parseTaskMessage(text)).toThrow(ZodError);
    // The quick check says yes only where the schema says yes.
    if (quickTaskMessage(JSON.parse(text)) !== undefined) expect(schema.success).toBe(true);
  });

  it("takes the common message without zod, and refuses text that is not JSON", () => {
    expect(quickTaskMessage(JSON.parse(JSON.stringify(valid)))).toEqual(valid);
    expect(() => parseTaskMessage("{not json")).toThrow(SyntaxError);
  });
});
