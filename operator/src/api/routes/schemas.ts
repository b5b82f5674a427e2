import { ERROR_CODES, ErrorBodySchema, type ErrorCode } from "@offload/sdk/internal";

// Every route may answer these.
const ALWAYS: ErrorCode[] = ["OFFLOAD_UNAUTHORIZED", "OFFLOAD_INTERNAL"];

/**
 * The error answers a route may give, keyed by status, for its OpenAPI entry
 * (which lists the codes behind each status) and so that error bodies are
 * checked against `ErrorBodySchema` on the way out.
 */
export function errorResponses(...codes: ErrorCode[]): Record<number, typeof ErrorBodySchema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const c of new Set([...codes, ...ALWAYS])) {
    const s = ERROR_CODES[c].status;
    byStatus.set(s, [...(byStatus.get(s) ?? []), c]);
  }
  const out: Record<number, typeof ErrorBodySchema> = {};
  for (const [status, list] of byStatus) {
    out[status] = ErrorBodySchema.describe(list.map((c) => `\`${c}\`: ${ERROR_CODES[c].description}`).join(" "));
  }
  return out;
}
