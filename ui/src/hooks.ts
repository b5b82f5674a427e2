import { useEffect, useRef, useState } from "preact/hooks";
import type { ApiProblem } from "./api.js";

/** What a load from the API gave: the value, or the problem, and whether a first answer is still awaited. */
export interface Loaded<T> {
  value: T | undefined;
  problem: ApiProblem | Error | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * Calls `load` now, again whenever `deps` change, every `everyMs` (if given)
 * and on `reload()`. An answer to an older call never overwrites a newer one.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [state, setState] = useState<{ value: T | undefined; problem: ApiProblem | Error | undefined; loading: boolean }>({ value: undefined, problem: undefined, loading: true });
  const seq = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = (): void => {
    const mine = ++seq.current;
    loadRef.current().then(
      (value) => mine === seq.current && setState({ value, problem: undefined, loading: false }),
      (problem: unknown) => mine === seq.current && setState((s) => ({ ...s, problem: problem instanceof Error ? problem : new Error(String(problem)), loading: false })),
    );
  };
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
    if (!everyMs) return;
    const timer = setInterval(reload, everyMs);
    return () => clearInterval(timer);
  }, deps);
  return { ...state, reload };
}
