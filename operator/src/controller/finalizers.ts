import type { KubernetesObject } from "@kubernetes/client-node";
import { messageOf, statusOf, type Kube } from "./kube.js";
import { RetryableError } from "./result.js";

/** The finalizers of `obj` (none: an empty list). */
export function finalizersOf(obj: KubernetesObject): string[] {
  return obj.metadata?.finalizers ?? [];
}

/**
 * Adds `finalizer` to `obj` (of the custom resource `plural`) unless it has
 * it; answers the object as it is now, or undefined if it is gone. The write
 * is conditional on the list read (see `patchFinalizers` of the kube client),
 * so that a concurrent change makes it fail and retry rather than drop
 * another finalizer.
 */
export async function addFinalizer(kube: Kube, plural: string, finalizer: string, obj: KubernetesObject): Promise<KubernetesObject | undefined> {
  const list = finalizersOf(obj);
  if (list.includes(finalizer)) return obj;
  return patchFinalizers(kube, plural, obj, [...list, finalizer]);
}

/**
 * Removes `finalizer` from `obj` if it has it (as {@link addFinalizer}, with the same care); answers the object as
 * the write left it, undefined when there was nothing to write or it is gone.
 */
export async function removeFinalizer(kube: Kube, plural: string, finalizer: string, obj: KubernetesObject): Promise<KubernetesObject | undefined> {
  const list = finalizersOf(obj);
  return list.includes(finalizer) ? patchFinalizers(kube, plural, obj, list.filter((f) => f !== finalizer)) : undefined;
}

async function patchFinalizers(kube: Kube, plural: string, obj: KubernetesObject, finalizers: string[]): Promise<KubernetesObject | undefined> {
  const m = obj.metadata ?? {};
  try {
    return await kube.patchFinalizers(plural, m.namespace ?? "default", m.name ?? "", finalizersOf(obj), finalizers, m.resourceVersion ?? "");
  } catch (err) {
    const code = statusOf(err);
    if (code === 404) return undefined;
    // 409: changed since it was read; 422: the list changed (the JSON patch's test failed), or deletion
    // began meanwhile (no finalizer may be added). The next try sees it as it is.
    if (code === 409 || code === 422) throw new RetryableError(`could not update the finalizers: ${messageOf(err)}`);
    throw err;
  }
}
