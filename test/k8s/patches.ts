/**
 * The PATCH content types the real server takes, and applying all but
 * server-side apply (which needs the managers: server.ts).
 */
import { jsonPatch, mergePatch, isObj, type Obj } from "./fields.js";
import { HttpError } from "./http.js";
import type { ResourceType } from "./resources.js";
import { strategicMergePatch } from "./strategic-merge.js";

export const APPLY_PATCH = "application/apply-patch+yaml";

/** The media types a PATCH of `t` may use: strategic merge only for built-in types (no Go struct tags for a CRD). */
export function acceptedPatchTypes(t: ResourceType): string[] {
  return ["application/json-patch+json", "application/merge-patch+json", APPLY_PATCH, ...(t.crd ? [] : ["application/strategic-merge-patch+json"])];
}

/** 415 unless `ct` is a patch type `t` accepts. */
export function checkPatchType(t: ResourceType, ct: string): void {
  const accepted = acceptedPatchTypes(t);
  if (!accepted.includes(ct)) throw new HttpError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`);
}

/** Applies a JSON, merge or strategic merge patch to `target` (a copy comes back). */
export function patchWith(ct: string, target: Obj, input: unknown): Obj {
  if (ct === "application/json-patch+json") {
    if (!Array.isArray(input)) throw new HttpError(400, "BadRequest", "a JSON patch must be an array of operations");
    try {
      return jsonPatch(target, input as { op: string; path: string; value?: unknown }[]);
    } catch (err) {
      throw new HttpError(422, "Invalid", `the server rejected our request due to an error in our request: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (ct === "application/strategic-merge-patch+json") return strategicMergePatch(target, input);
  if (!isObj(input)) throw new HttpError(400, "BadRequest", "a merge patch must be a JSON object");
  return mergePatch(target, input) as Obj;
}

