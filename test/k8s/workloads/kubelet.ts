/**
 * The scheduler and the kubelet of the stand-in's one node: a new pod is
 * bound to the node (`spec.nodeName`, condition PodScheduled), then given a
 * life: Running and Ready at once, or through the test's {@link KubeletHook}
 * (Running, Ready once `start` resolves, Failed if it rejects). A pod marked
 * for deletion is stopped (the hook's `stop` with the grace period) and then
 * deleted for good with grace 0, as the real kubelet does once its containers
 * are gone.
 */
import { clone, isObj, type Obj } from "../fields.js";
import type { FakeKube } from "../server.js";
import type { KubeletHook } from "./index.js";
import { podStatusAt, timestamp, type PodStage } from "./pods.js";
import { recordEvent, recordScheduled } from "./events.js";

/** What the kubelet needs from the controllers around it. */
export interface KubeletDeps {
  kube: FakeKube;
  hook: KubeletHook | undefined;
  nodeName: string;
  /** Counts a hook call in flight (for Workloads.settled). */
  track(p: Promise<unknown>): void;
  /** Reports an error that must not take the stand-in down. */
  report(err: unknown, what: string): void;
}

/** One pod's life on the node, from binding to removal (keyed by the pod's uid: a new pod of the same name is a new life). */
interface Life {
  uid: string;
  namespace: string;
  name: string;
  /** The pod as last seen (what `stop` gets if the pod is already gone). */
  pod: Obj;
  podIP: string;
  /** The hook's `start` resolved (or there is no hook). */
  started: boolean;
  /** The hook's `start` failed: the pod is Failed. */
  failed: boolean;
  /** The readiness probe's verdict (Workloads.setReady); true until told otherwise. */
  probeReady: boolean;
  stopCalled: boolean;
}

const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});
const specOf = (o: Obj): Obj => (isObj(o.spec) ? o.spec : {});
const statusOf = (o: Obj): Obj => (isObj(o.status) ? o.status : {});
const uidOf = (o: Obj): string => String(metaOf(o).uid ?? "");
const HOST_IP = "10.0.0.10";
const SCHEDULERS = ["default-scheduler"];

export class Kubelet {
  readonly #deps: KubeletDeps;
  readonly #lives = new Map<string, Life>();
  readonly #stops = new Set<Promise<void>>();
  #nextIp = 0;
  #closed = false;

  constructor(deps: KubeletDeps) {
    this.#deps = deps;
  }

  /** Brings the pod `namespace/name` one step along its life, whatever happened to it. */
  sync(namespace: string, name: string): void {
    if (this.#closed) return;
    const { kube, nodeName } = this.#deps;
    const pod = kube.get("pods", namespace, name);
    // A life whose pod is gone (force-deleted, or a finished pod deleted at once) still ends with `stop`.
    for (const life of [...this.#lives.values()]) {
      if (life.namespace === namespace && life.name === name && (!pod || uidOf(pod) !== life.uid)) this.#stop(life, 0);
    }
    if (!pod) return;
    const m = metaOf(pod);
    const spec = specOf(pod);
    if (!spec.nodeName) {
      if (m.deletionTimestamp === undefined && SCHEDULERS.includes(String(spec.schedulerName ?? "default-scheduler"))) this.#bind(pod);
      return;
    }
    if (spec.nodeName !== nodeName) return;
    const life = this.#lives.get(uidOf(pod));
    if (m.deletionTimestamp !== undefined) {
      if (life) {
        life.pod = pod;
        this.#stop(life, Number(m.deletionGracePeriodSeconds ?? 0));
      } else kube.delete("pods", namespace, name, { gracePeriodSeconds: 0 });
      return;
    }
    if (life) {
      life.pod = pod;
      return;
    }
    const phase = statusOf(pod).phase;
    if (phase === "Failed" || phase === "Succeeded") return;
    this.#start(pod);
  }

  /** The readiness probe's verdict for a pod on this node. */
  setReady(namespace: string, name: string, ready: boolean): void {
    const pod = this.#deps.kube.get("pods", namespace, name);
    if (!pod) throw new Error(`pod ${namespace}/${name} does not exist: list the pods (fake.list("pods", ns)) for the names the ReplicaSet gave them`);
    const life = this.#lives.get(uidOf(pod));
    if (!life) throw new Error(`pod ${namespace}/${name} is not running on node ${this.#deps.nodeName} (not bound yet, or already stopped): wait for it to be Running first`);
    life.probeReady = ready;
    if (life.started && !life.failed && !life.stopCalled) this.#write(life, ready ? "ready" : "started");
  }

  /** Ends every pod's life (the hook's `stop` with grace 0, as a node switched off) and waits for those stops. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const life of [...this.#lives.values()]) this.#stop(life, 0);
    await Promise.all([...this.#stops]);
  }

  /** The scheduler's binding: the one node, and the PodScheduled condition. */
  #bind(pod: Obj): void {
    const { kube, nodeName } = this.#deps;
    const m = metaOf(pod);
    const ns = String(m.namespace);
    const name = String(m.name);
    kube.patch("pods", ns, name, { spec: { nodeName } }, "kube-scheduler");
    const bound = kube.patchStatus("pods", ns, name, { conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: timestamp() }] }, "kube-scheduler");
    recordScheduled(kube, bound, nodeName);
  }

  /** One of the kubelet's Events about the pod's containers. */
  #event(life: Life, type: "Normal" | "Warning", reason: string, message: (container: string) => string): void {
    const containers = (Array.isArray(specOf(life.pod).containers) ? (specOf(life.pod).containers as unknown[]) : []).filter(isObj);
    for (const c of containers) recordEvent(this.#deps.kube, life.pod, type, reason, message(String(c.name)), "kubelet", this.#deps.nodeName);
  }

  #start(pod: Obj): void {
    const m = metaOf(pod);
    const n = this.#nextIp++;
    const life: Life = {
      uid: uidOf(pod),
      namespace: String(m.namespace),
      name: String(m.name),
      pod,
      podIP: `10.244.${Math.floor(n / 250)}.${(n % 250) + 2}`,
      started: false,
      failed: false,
      probeReady: true,
      stopCalled: false,
    };
    this.#lives.set(life.uid, life);
    this.#write(life, "creating");
    this.#event(life, "Normal", "Started", (c) => `Started container ${c}`);
    const hook = this.#deps.hook;
    if (!hook) {
      life.started = true;
      this.#write(life, "ready");
      return;
    }
    this.#write(life, "started");
    const started = new Promise<void>((resolve) => resolve(hook.start(clone(life.pod)))).then(
      () => {
        life.started = true;
        if (!this.#closed && !life.stopCalled) this.#write(life, life.probeReady ? "ready" : "started");
      },
      (err: unknown) => {
        life.failed = true;
        this.#deps.report(err, `the kubelet hook's start of pod ${life.namespace}/${life.name}`);
        const message = `kubelet hook start failed: ${err instanceof Error ? err.message : String(err)}`;
        if (!this.#closed && !life.stopCalled) {
          this.#write(life, "failed", message);
          this.#event(life, "Warning", "Failed", () => message);
        }
      },
    );
    this.#deps.track(started);
  }

  /** Calls the hook's `stop` once per life, then deletes the pod for good (grace 0) if it is still there. */
  #stop(life: Life, graceSeconds: number): void {
    if (life.stopCalled) return;
    life.stopCalled = true;
    if (!this.#closed) this.#event(life, "Normal", "Killing", (c) => `Stopping container ${c}`);
    const finish = (): void => {
      this.#lives.delete(life.uid);
      if (this.#closed) return;
      const { kube } = this.#deps;
      const cur = kube.get("pods", life.namespace, life.name);
      if (cur && uidOf(cur) === life.uid) kube.delete("pods", life.namespace, life.name, { gracePeriodSeconds: 0 });
    };
    const hook = this.#deps.hook;
    if (!hook) {
      finish();
      return;
    }
    const stopped = new Promise<void>((resolve) => resolve(hook.stop(clone(life.pod), graceSeconds)))
      .catch((err: unknown) => this.#deps.report(err, `the kubelet hook's stop of pod ${life.namespace}/${life.name}`))
      .then(() => {
        try {
          finish();
        } catch (err) {
          this.#deps.report(err, `removing pod ${life.namespace}/${life.name}`);
        }
      });
    this.#stops.add(stopped);
    void stopped.finally(() => this.#stops.delete(stopped));
    this.#deps.track(stopped);
  }

  /** The kubelet's status write for the stage the life is at (nothing if the pod is gone or replaced). */
  #write(life: Life, stage: PodStage, message?: string): void {
    const { kube } = this.#deps;
    try {
      const cur = kube.get("pods", life.namespace, life.name);
      if (!cur || uidOf(cur) !== life.uid) return;
      life.pod = kube.patchStatus("pods", life.namespace, life.name, podStatusAt(cur, { stage, podIP: life.podIP, hostIP: HOST_IP, ...(message ? { message } : {}) }), "kubelet");
    } catch (err) {
      this.#deps.report(err, `the kubelet's status write (${stage}) of pod ${life.namespace}/${life.name}`);
    }
  }
}
