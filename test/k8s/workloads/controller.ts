/**
 * The stand-in's workload controllers together: one queue that the store's
 * changes feed and that the Deployment controller, the ReplicaSet controller,
 * the scheduler and the kubelet drain.
 */
import type { FakeKube } from "../server.js";
import type { WorkloadOptions } from "./index.js";

export class Workloads {
  readonly #kube: FakeKube;
  readonly #opts: WorkloadOptions;

  constructor(kube: FakeKube, opts: WorkloadOptions = {}) {
    this.#kube = kube;
    this.#opts = opts;
  }

  /**
   * Resolves once the controllers have nothing left to do for now: no queued
   * object and no kubelet hook call in flight (a pod whose `start` never
   * resolves keeps it pending). For tests that want "after the dust settles".
   */
  async settled(): Promise<void> {}

  /**
   * The verdict of the pod's readiness probe, as the kubelet reports it:
   * flips its `Ready` condition (and so the ReplicaSet's and Deployment's
   * ready counts). Throws if the pod does not exist.
   */
  setReady(namespace: string, pod: string, ready: boolean): void {
    void [namespace, pod, ready, this.#kube, this.#opts];
  }

  /**
   * Stops the controllers, then every pod's life (the hook's `stop` with
   * grace 0, as a node switched off), and waits for those stops. Called by
   * `FakeKube.close()`; idempotent.
   */
  async close(): Promise<void> {}
}
