import { connect } from "node:net";

/** What came back for a request written by hand: the status line's code, the headers and the body as text. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `head` (request line and headers, no final blank line) and `body` to
 * the server at `url` over a fresh socket and reads the answer until the
 * server closes it (`connection: close`). For requests fetch() would refuse
 * to send or would rewrite: broken percent-encoding, oversized headers.
 */
export async function rawRequest(url: string, head: string, body = ""): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  socket.on("data", (b: Buffer) => chunks.push(b));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const length = Buffer.byteLength(body);
  socket.write(`${head}\r\nHost: ${hostname}\r\nConnection: close\r\n${length ? `Content-Length: ${length}\r\n` : ""}\r\n${body}`);
  // The server may close while we are still writing (431): an EPIPE/ECONNRESET then is part of the answer, not a failure.
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.once("error", () => resolve());
  });
  const text = Buffer.concat(chunks).toString("utf8");
  const [top = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...headerLines] = top.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: rest.join("\r\n\r\n") };
}
