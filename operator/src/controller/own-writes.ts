import type { KubernetesObject } from "@kubernetes/client-node";

interface Entry {
  uid: string | undefined;
  /** resourceVersions known to be older than {@link latest}: a cache showing one of them has not seen the write yet. */
  older: Set<string>;
  /** The object as the controller's last write of it was answered. */
  latest: KubernetesObject;
}

/**
 * The objects of one kind as the controller's own writes answered them, kept
 * only until the informer cache has caught up with those writes.
 *
 * Why: a reconcile reads its object from the informer cache, which learns of
 * a write only when the watch event for it comes back. A reconcile that runs
 * in between (another event for the object queues one at once) computes from
 * the object as it was before the write: a condition whose status the write
 * changed gets its `lastTransitionTime` stamped anew and is written again, and
 * Events that follow from the old status (a TaskRun's Submitted, a
 * TaskSchedule's Created, a Deployment's Scaled) are recorded a second time.
 * A resourceVersion precondition on the write does not help: its 409 is
 * retried against the same stale cache, which repeats the Events.
 *
 * So each write's answer (the object as the API server stored it) is kept,
 * with the resourceVersions known to be older: that of the object the write
 * was computed from, and those of the controller's own writes just before it
 * (a finalizer or scale write before a status write, an earlier status write
 * the cache has not shown either). While the cache shows one of those,
 * {@link view} answers the kept object; once it shows any other (the write
 * itself, or a later change by anyone), the entry is dropped and the cache
 * rules again. resourceVersions are only compared for equality: the API
 * conventions make them opaque.
 *
 * Keyed by namespace/name, with the uid kept: the reconcile of an object that
 * is gone (no uid to hand) drops its entry with {@link forget}, and an object
 * made anew under the same name is not taken for the old one.
 */
export class OwnWrites {
  readonly #entries = new Map<string, Entry>();

  /** `cached` as the reconcile should see it: the controller's last write of it while the cache has not seen that write. */
  view<T extends KubernetesObject>(cached: T | undefined): T | undefined {
    if (!cached) return undefined;
    const key = keyOf(cached);
    const e = this.#entries.get(key);
    if (!e) return cached;
    const rv = cached.metadata?.resourceVersion;
    if (e.uid === cached.metadata?.uid && rv !== undefined && e.older.has(rv)) return e.latest as T;
    this.#entries.delete(key);
    return cached;
  }

  /**
   * Notes a write computed from `from` (as {@link view} showed it, or as read
   * from the API server) that was answered with `answer`; `older` names the
   * resourceVersions of other writes of the object made on the way (a scale
   * write answers a Scale, not the object).
   */
  wrote(from: KubernetesObject, answer: KubernetesObject | undefined, older: readonly string[] = []): void {
    const key = keyOf(from);
    const uid = from.metadata?.uid;
    const fromRv = from.metadata?.resourceVersion;
    const rv = answer?.metadata?.resourceVersion;
    if (!answer || rv === undefined || fromRv === undefined || answer.metadata?.uid !== uid) {
      this.#entries.delete(key); // nothing to compare a cached object with: the cache rules
      return;
    }
    // A write that changed nothing (an apply of what is there) answers the resourceVersion it was computed from.
    if (rv === fromRv) return;
    const prev = this.#entries.get(key);
    const set = new Set<string>(older);
    set.add(fromRv);
    if (prev && prev.uid === uid) {
      for (const v of prev.older) set.add(v);
      const prevRv = prev.latest.metadata?.resourceVersion;
      if (prevRv !== undefined) set.add(prevRv);
    }
    set.delete(rv); // defensive: the answer itself is never older than itself
    this.#entries.set(key, { uid, older: set, latest: answer });
  }

  /** Drops what is kept for an object that is gone (or going). */
  forget(namespace: string, name: string): void {
    this.#entries.delete(`${namespace}/${name}`);
  }
}

function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}
