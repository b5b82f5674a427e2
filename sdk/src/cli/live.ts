/**
 * The one line `offload` keeps up to date while it waits (`delay --wait`,
 * `runs logs --follow`), on stderr so that stdout carries only the answer.
 * On a terminal it is redrawn in place with a spinner and the time waited;
 * anywhere else (a pipe, a CI log) each new text is one plain line, and
 * nothing is drawn between changes.
 */
import { duration } from "./format.js";

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Where the line goes: a stream and whether it is a terminal. */
export interface LineOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class LiveLine {
  readonly #out: LineOutput;
  readonly #started = Date.now();
  #text = "";
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;
  #drawn = false;

  constructor(out: LineOutput) {
    this.#out = out;
    if (out.isTTY) {
      this.#timer = setInterval(() => this.#draw(), 120);
      // The spinner must never be what keeps the process alive.
      this.#timer.unref();
    }
  }

  /** Shows `text`: redrawn on a terminal; a new line elsewhere, only when it changed. */
  set(text: string): void {
    if (text === this.#text) return;
    this.#text = text;
    if (this.#out.isTTY) this.#draw();
    else this.#out.write(`${text}\n`);
  }

  /** Prints `text` as a line of its own above the live line (e.g. a log line while following). */
  print(text: string): void {
    if (this.#out.isTTY && this.#drawn) this.#out.write("\r\x1b[2K");
    this.#out.write(`${text}\n`);
    this.#drawn = false;
    if (this.#out.isTTY) this.#draw();
  }

  /** Removes the line from a terminal and stops redrawing. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#out.isTTY && this.#drawn) this.#out.write("\r\x1b[2K");
    this.#drawn = false;
  }

  #draw(): void {
    if (!this.#text) return;
    this.#frame = (this.#frame + 1) % FRAMES.length;
    const line = `${FRAMES[this.#frame]} ${this.#text} · ${duration(Date.now() - this.#started)}`;
    // A terminal that reports no width (0, e.g. a pty nobody sized) gets the usual 80.
    const max = Math.max(10, (this.#out.columns || 80) - 1);
    this.#out.write(`\r\x1b[2K${[...line].length > max ? `${[...line].slice(0, max - 1).join("")}…` : line}`);
    this.#drawn = true;
  }
}
