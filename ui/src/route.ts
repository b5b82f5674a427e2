/**
 * Hash routes (#/runs/ID): the run API serves one index.html at /ui/ and
 * needs no fallback for client paths, and a link can be copied and shared.
 */
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { page: "overview" }
  | { page: "runs"; query: URLSearchParams }
  | { page: "run"; id: string }
  | { page: "workers" }
  | { page: "schedules" };

export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts[1]) return { page: "run", id: parts[1] };
  if (parts[0] === "runs") return { page: "runs", query: new URLSearchParams(search) };
  if (parts[0] === "workers") return { page: "workers" };
  if (parts[0] === "schedules") return { page: "schedules" };
  return { page: "overview" };
}

export const href = {
  overview: () => "#/",
  runs: (query: Record<string, string | undefined> = {}) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v) qs.set(k, v);
    return `#/runs${qs.size ? `?${qs}` : ""}`;
  },
  run: (id: string) => `#/runs/${encodeURIComponent(id)}`,
  workers: () => "#/workers",
  schedules: () => "#/schedules",
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = (): void => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}
