import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";

/**
 * Takes `reply` out of fastify's hands and starts a `text/event-stream` on
 * its socket; the caller writes the events and ends it.
 */
export function openEventStream(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    // The socket goes with the stream: an idle keep-alive socket left behind would hold up shutdown.
    connection: "close",
    // Tells nginx-style proxies not to buffer the stream.
    "x-accel-buffering": "no",
  });
  return res;
}
