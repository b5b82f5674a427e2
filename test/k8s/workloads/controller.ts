/**
 * The stand-in's workload controllers together: the store's changes feed one
 * queue of objects to sync (as informers feed kube-controller-manager's work
 * queues), drained on the event loop after the write that queued them, by
 * the Deployment controller, the ReplicaSet controller and the node's
 * scheduler + kubelet.
 */
import { isObj, type Obj } from "../fields.js";
import type { FakeKube, StoreEvent } from "../server.js";
import { DeploymentController } from "./deployments.js";
import type { WorkloadOptions } from "./index.js";
import { Kubelet } from "./kubelet.js";
import { ReplicaSetController, controllerOf, metaOf, type ControllerDeps } from "./replicasets.js";

type Kind = "deployments" | "replicasets" | "pods";
const key = (kind: Kind, namespace: string, name: string): string => `${kind}\0${namespace}\0${name}`;
/** Syncs per turn of the event loop, so that HTTP requests are answered in between. */
const BATCH = 200;

/** The stand-in is test infrastructure: it says what went wrong on stderr, one JSON line, and goes on, as a controller logs and retries. */
function report(err: unknown, what: string): void {
  process.stderr.write(`${JSON.stringify({ msg: `k8s stand-in workloads: ${what} failed`, err: err instanceof Error ? err.message : String(err) })}\n`);
}

export class Workloads {
  readonly #kube: FakeKube;
  readonly #deployments: DeploymentController;
  readonly #replicaSets: ReplicaSetController;
  readonly #kubelet: Kubelet;
  readonly #queue = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Syncs of a key that failed in a row: its retries back off (as the work queue's rate limiter does). */
  readonly #failures = new Map<string, number>();
  readonly #unobserve: () => void;
  #pending = 0;
  #drainScheduled = false;
  #closed = false;
  #waiters: (() => void)[] = [];

  constructor(kube: FakeKube, opts: WorkloadOptions = {}) {
    this.#kube = kube;
    const deps: ControllerDeps = {
      kube,
      report,
      requeueAfter: (resource, namespace, name, ms) => {
        if (this.#closed) return;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#enqueue(key(resource, namespace, name));
          this.#checkSettled();
        }, ms);
        this.#timers.add(timer);
      },
    };
    this.#deployments = new DeploymentController(deps);
    this.#replicaSets = new ReplicaSetController(deps);
    this.#kubelet = new Kubelet({
      kube,
      hook: opts.kubelet,
      nodeName: opts.nodeName ?? "fake-node",
      report,
      track: (p) => {
        this.#pending++;
        void p.finally(() => {
          this.#pending--;
          this.#checkSettled();
        });
      },
    });
    this.#unobserve = kube.observe((e) => this.#onChange(e));
    // Objects stored before the controllers started are synced as an informer's initial list would.
    for (const kind of ["deployments", "replicasets", "pods"] as const) {
      for (const o of kube.list(kind)) this.#enqueue(key(kind, String(metaOf(o).namespace), String(metaOf(o).name)));
    }
  }

  /**
   * Resolves once the controllers have nothing left to do for now: no queued
   * object, no backoff timer and no kubelet hook call in flight (a pod whose
   * `start` never resolves keeps it pending). For tests that want "after the
   * dust settles"; waiting for an object's state through a watch is better
   * where one can.
   */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#checkSettled();
    });
  }

  /**
   * The verdict of a pod's readiness probe, as its kubelet reports it: flips
   * its `Ready` condition (and so the ReplicaSet's and Deployment's ready
   * counts, and where it stands in the scale-down order). Throws if the pod
   * does not exist or is not running on the node.
   */
  setReady(namespace: string, pod: string, ready: boolean): void {
    this.#kubelet.setReady(namespace, pod, ready);
  }

  /**
   * Stops the controllers, then every pod's life (the hook's `stop` with
   * grace 0, as a node switched off), and waits for those stops. Called by
   * `FakeKube.close()`; idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#unobserve();
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      this.#queue.clear();
    }
    await this.#kubelet.close();
    this.#checkSettled();
  }

  #onChange(e: StoreEvent): void {
    const { resource: t, object: o } = e;
    const m = metaOf(o);
    const ns = String(m.namespace ?? "");
    const name = String(m.name);
    if (t.group === "apps" && t.kind === "Deployment") this.#enqueue(key("deployments", ns, name));
    else if (t.group === "apps" && t.kind === "ReplicaSet") {
      this.#enqueue(key("replicasets", ns, name));
      if (e.type === "DELETED") this.#replicaSets.forget(String(m.uid));
      this.#enqueueOwner(o, ns);
    } else if (t.group === "" && t.kind === "Pod") {
      this.#enqueue(key("pods", ns, name));
      this.#enqueueOwner(o, ns);
      // A Recreate rollout waits for the old pods to be gone: the Deployment hears of each pod deleted (deletePod).
      const rsRef = controllerOf(o);
      if (e.type === "DELETED" && rsRef?.kind === "ReplicaSet") {
        const rs = this.#kube.get("replicasets", ns, String(rsRef.name));
        if (rs) this.#enqueueOwner(rs, ns);
      }
    }
  }

  /** The controller of a ReplicaSet or Pod syncs when its dependent changes. */
  #enqueueOwner(o: Obj, ns: string): void {
    const ref = controllerOf(o);
    if (!ref || !isObj(ref) || ref.apiVersion !== "apps/v1") return;
    if (ref.kind === "Deployment") this.#enqueue(key("deployments", ns, String(ref.name)));
    if (ref.kind === "ReplicaSet") this.#enqueue(key("replicasets", ns, String(ref.name)));
  }

  #enqueue(k: string): void {
    if (this.#closed) return;
    this.#queue.add(k);
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => this.#drain());
  }

  #drain(): void {
    this.#drainScheduled = false;
    let n = 0;
    for (const k of this.#queue) {
      if (this.#closed || n++ >= BATCH) break;
      this.#queue.delete(k);
      const [kind, ns, name] = k.split("\0") as [Kind, string, string];
      try {
        if (kind === "deployments") this.#deployments.sync(ns, name);
        else if (kind === "replicasets") this.#replicaSets.sync(ns, name);
        else this.#kubelet.sync(ns, name);
      } catch (err) {
        // As a controller's work queue: log, and try again later, backing off (not at once, which would spin).
        report(err, `the sync of ${kind} ${ns}/${name}`);
        const failures = (this.#failures.get(k) ?? 0) + 1;
        this.#failures.set(k, failures);
        if (this.#kube.get(kind, ns, name)) {
          const timer = setTimeout(() => {
            this.#timers.delete(timer);
            this.#enqueue(k);
          }, Math.min(100 * 2 ** (failures - 1), 10_000));
          this.#timers.add(timer);
        } else this.#failures.delete(k);
        continue;
      }
      this.#failures.delete(k);
    }
    if (this.#queue.size && !this.#closed && !this.#drainScheduled) {
      this.#drainScheduled = true;
      setImmediate(() => this.#drain());
    }
    this.#checkSettled();
  }

  #checkSettled(): void {
    const idle = this.#closed || (this.#queue.size === 0 && this.#timers.size === 0 && this.#pending === 0 && !this.#drainScheduled);
    if (!idle) return;
    for (const w of this.#waiters.splice(0)) w();
  }
}
