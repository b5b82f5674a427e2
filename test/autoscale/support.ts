// The autoscaling world, shared by test/autoscale/ and bench/autoscale.ts: a
// real nats-server, PostgreSQL and run API, the real controller process, and
// the Kubernetes stand-in with its workload controllers, whose kubelet runs a
// real offload-worker process per pod, configured from the pod's own env as a
// container would be (OFFLOAD_WORKER_ID from the Downward API's
// metadata.name), stopped with SIGTERM on deletion and SIGKILL after the grace.
import { fileURLToPath } from "node:url";
import { startController } from "../controller/support.js";
import { isObj, startFakeKube, type FakeKube, type KubeletHook, type Obj } from "../k8s/index.js";
import { freePort, killAll, startProcess, startStack, stopSharedPostgres, untilReady, WORKER_BIN, type Child, type Stack } from "../support/index.js";

export const AUTOSCALE_TASKS = fileURLToPath(new URL("./fixtures/tasks.mjs", import.meta.url));
export const NS = "autoscale";
const TOKEN = "autoscale-token";

export const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});
export const podName = (pod: Obj): string => String(metaOf(pod).name);

/** One pod's worker process, as the kubelet hook started it. */
export interface PodProcess {
  pod: string;
  child: Child;
  /** The environment the pod's container spec gave it (before the port the hook picks). */
  env: Record<string, string>;
  /** How the process ended, once the pod was stopped: the exit code, or the signal that ended it. */
  exit?: number | string;
  /** The grace period the pod was stopped with. */
  graceSeconds?: number;
}

/**
 * The container env a kubelet would give the pod's first container: literal
 * values, and the Downward API's `metadata.name` / `metadata.namespace`
 * field refs. Anything else (Secrets) is left out: the test stack needs none.
 */
export function containerEnv(pod: Obj): Record<string, string> {
  const spec = isObj(pod.spec) ? pod.spec : {};
  const container = Array.isArray(spec.containers) && isObj(spec.containers[0]) ? spec.containers[0] : {};
  const out: Record<string, string> = {};
  for (const e of Array.isArray(container.env) ? container.env.filter(isObj) : []) {
    const name = String(e.name);
    if (typeof e.value === "string") out[name] = e.value;
    const fieldPath = isObj(e.valueFrom) && isObj(e.valueFrom.fieldRef) ? e.valueFrom.fieldRef.fieldPath : undefined;
    if (fieldPath === "metadata.name") out[name] = podName(pod);
    if (fieldPath === "metadata.namespace") out[name] = String(metaOf(pod).namespace);
  }
  return out;
}

/** A kubelet hook that runs a real worker process per pod. */
export function workerKubelet(): { hook: KubeletHook; pods: Map<string, PodProcess> } {
  const pods = new Map<string, PodProcess>();
  const hook: KubeletHook = {
    async start(pod) {
      const env = containerEnv(pod);
      // Every "pod" shares this host's network: each gets a free loopback port for its probes.
      const port = await freePort();
      const child = startProcess(`pod ${podName(pod)}`, process.execPath, [WORKER_BIN], { ...env, OFFLOAD_WORKER_PORT: String(port), OFFLOAD_WORKER_HOST: "127.0.0.1", OFFLOAD_LOG_LEVEL: "info" }, undefined, { group: true });
      const p: PodProcess = { pod: podName(pod), child, env };
      pods.set(p.pod, p);
      // Ready as its readiness probe would say; a pod deleted while starting is not a failed start.
      await untilReady(child, `pod ${p.pod}'s worker to be ready`, `http://127.0.0.1:${port}/readyz`, 30_000).catch((err: unknown) => {
        if (p.graceSeconds === undefined) throw err;
      });
    },
    async stop(pod, graceSeconds) {
      const p = pods.get(podName(pod));
      if (!p) return;
      p.graceSeconds = graceSeconds;
      p.exit = await p.child.stop(graceSeconds * 1000);
    },
  };
  return { hook, pods };
}

/** Resolves with `check()`'s first truthy answer, checked now and after each change in the stand-in's store. */
export function untilKube<T>(fake: FakeKube, what: string, check: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const first = check();
    if (first) return resolve(first);
    const stop = fake.observe(() => {
      const v = check();
      if (!v) return;
      done();
      resolve(v);
    });
    const timer = setTimeout(() => (done(), reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))), timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      stop();
    };
  });
}

/** Everything the autoscaling tests and the bench run against. */
export interface AutoscaleWorld {
  stack: Stack;
  fake: FakeKube;
  controller: Child;
  /** The worker process of each pod the stand-in's kubelet started, by pod name. */
  pods: Map<string, PodProcess>;
  /** The TaskWorker's pods not being deleted. */
  livePods(taskWorker: string): Obj[];
  /** Stops everything, in order (the stand-in's pods first, so no worker outlives NATS); safe after a failure. */
  stop(): Promise<void>;
}

/** Starts the world: stack, stand-in with worker pods, controller (acting). */
export async function startAutoscaleWorld(controllerEnv: Record<string, string> = {}): Promise<AutoscaleWorld> {
  const kubelet = workerKubelet();
  let stack: Stack | undefined;
  let fake: FakeKube | undefined;
  let controller: Child | undefined;
  const stop = async (): Promise<void> => {
    await controller?.stop(5000);
    // Closing the stand-in stops every pod's life (its worker process) first.
    await fake?.close();
    await stack?.stop();
    await stopSharedPostgres();
    await killAll();
  };
  try {
    [stack, fake] = await Promise.all([startStack({ token: TOKEN }), startFakeKube({ crds: true, workloads: { kubelet: kubelet.hook } })]);
    fake.ensureNamespace(NS);
    controller = await startController(fake, "ctl-autoscale", {
      OFFLOAD_API_URL: stack.apiUrl,
      OFFLOAD_API_TOKEN: TOKEN,
      OFFLOAD_NATS_URL: stack.nats.url,
      OFFLOAD_LEADER_ELECTION: "false",
      OFFLOAD_LOG_LEVEL: "info",
      ...controllerEnv,
    });
    await controller.waitForOutput("controller acting");
  } catch (err) {
    await stop();
    throw err;
  }
  const f = fake;
  return {
    stack,
    fake,
    controller,
    pods: kubelet.pods,
    livePods: (tw) => f.list("pods", NS).filter((p) => podName(p).startsWith(`${tw}-`) && metaOf(p).deletionTimestamp === undefined),
    stop,
  };
}

/** A TaskWorker serving the fixture tasks, autoscaled. */
export function autoscaledTaskWorker(name: string, spec: { tasks: string[]; concurrency: number; autoscaling: Record<string, number>; drainSeconds?: number }): Obj {
  return {
    apiVersion: "offload.dev/v1alpha1",
    kind: "TaskWorker",
    metadata: { name, namespace: NS },
    spec: { image: "offload-worker:test", module: AUTOSCALE_TASKS, drainSeconds: 10, ...spec },
  };
}
