import { describe, expect, it } from "vitest";
import { readServerSentEvents, type ServerSentEvent } from "../../sdk/src/sse.js";

/** A body that delivers `chunks` one by one, as a network would. */
function body(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
}

async function all(chunks: string[]): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = [];
  for await (const e of readServerSentEvents(body(chunks))) out.push(e);
  return out;
}

describe("reading server-sent events", () => {
  it("splits events on blank lines, whatever the chunking, and skips comments and retry hints", async () => {
    const stream = 'retry: 2000\n\nid: 1\nevent: state\ndata: {"a":1}\n\n: keep-alive\n\nevent: state\ndata: {"a":2}\n\n';
    const expected = [
      { event: "state", data: '{"a":1}' },
      { event: "state", data: '{"a":2}' },
    ];
    expect(await all([stream])).toEqual(expected);
    expect(await all(stream.split(""))).toEqual(expected); // one character at a time
  });

  it("joins multi-line data, takes CRLF line ends, and defaults the event name", async () => {
    expect(await all(["data: one\r\ndata: two\r\n\r\n", "data:x\n\n"])).toEqual([
      { event: "message", data: "one\ntwo" },
      { event: "message", data: "x" },
    ]);
  });

  it("drops an unfinished event when the stream ends mid-way", async () => {
    expect(await all(["event: state\ndata: {\"a\":1}\n\nevent: state\ndata: {\"a\""])).toEqual([{ event: "state", data: '{"a":1}' }]);
  });
});
