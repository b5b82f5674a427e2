import { isRealTimestamp } from "@offload/sdk/internal";
import { isUuid } from "./ids.js";

/**
 * The opaque `cursor` of `GET /v1/runs`: the sort key (creation time at full
 * database precision, and id) of the last run on the page, base64url-encoded.
 * Keyset pagination stays correct while runs are being added, unlike OFFSET.
 */
export interface CursorKey {
  /** `created_at` in UTC with microseconds, e.g. `2025-01-02T03:04:05.123456Z` (a JS Date would drop the microseconds). */
  createdAt: string;
  id: string;
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.createdAt, key.id])).toString("base64url");
}

/** The key in `cursor`, or undefined when it is not one this API made. */
export function decodeCursor(cursor: string): CursorKey | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (!Array.isArray(v) || v.length !== 2) return undefined;
    const [createdAt, id] = v as unknown[];
    if (typeof createdAt !== "string" || !TIMESTAMP.test(createdAt) || !isRealTimestamp(createdAt)) return undefined;
    if (typeof id !== "string" || !isUuid(id)) return undefined;
    return { createdAt, id };
  } catch {
    return undefined;
  }
}

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
