/** A progress line on stderr at most once a second: `[bench] offload: flat out 2300/5000 submitted`. */
export interface Progress {
  tick(done: number): void;
  /** Starts a new phase (its first tick prints at once). */
  phase(what: string, total: number): void;
}

export function progressLine(prefix: string, write: (line: string) => void): Progress {
  let what = "";
  let total = 0;
  let last = 0;
  let finished = false;
  return {
    phase(w, t) {
      what = w;
      total = t;
      last = 0;
      finished = false;
    },
    tick(done) {
      const now = Date.now();
      if (now - last < 1000 && done < total) return;
      // The phase's end once: a system's own last report and the workload's closing tick may both say it.
      if (done >= total && finished) return;
      finished = done >= total;
      last = now;
      write(`${prefix}: ${what} ${done}/${total}`);
    },
  };
}
