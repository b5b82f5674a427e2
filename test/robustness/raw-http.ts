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

/**
 * Sends `first` and, once its answer has come, `second` on one kept-alive
 * socket, as an SDK client does; answers everything the server wrote, as text,
 * once it closes the socket.
 */
export async function rawKeepAlive(url: string, first: string, second: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let text = "";
  const answered = new Promise<void>((resolve) => {
    socket.on("data", (b: Buffer) => {
      text += b.toString("utf8");
      if (text.includes("\r\n\r\n")) resolve();
    });
  });
  const closed = new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.once("error", () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(`${first}\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
  await answered;
  socket.write(`${second}\r\nHost: ${hostname}\r\n\r\n`);
  await closed;
  return text;
}
