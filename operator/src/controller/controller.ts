import { readFileSync } from "node:fs";
import type { KubeConfig, KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { OffloadClient, type TaskInfo } from "@offload/sdk/internal";
import type { Logger } from "pino";
import { TASKRUN, TASKSCHEDULE, TASKWORKER, TaskWorkerSchema } from "../crds/schemas.js";
import { backlogOf } from "./autoscale.js";
import { Autoscaler, poolTasks, type TaskSnapshot } from "./autoscaler.js";
import type { WorkerDefaults } from "./desired.js";
import { EventRecorder } from "./events.js";
import { ResilientInformer, type InformerEvent } from "./informers.js";
import { Kube, messageOf } from "./kube.js";
import { MANAGED_SELECTOR } from "./labels.js";
import { OwnWrites } from "./own-writes.js";
import { LeaderElector } from "./leader.js";
import { RateLimiter, WorkQueue, realClock, type Clock, type RateLimiterOptions } from "./queue.js";
import { reconcileTaskRun } from "./taskrun.js";
import { reconcileTaskSchedule } from "./taskschedule.js";
import { RetryableError, type ReconcileResult } from "./result.js";
import { TaskWatch, type TaskListChange } from "./task-watch.js";
import type { TaskWorkerMetricsSource, TaskWorkerSample } from "./metrics.js";
import { reconcileTaskWorker } from "./taskworker.js";

/** Options of {@link Controller}. */
export interface ControllerOptions {
  kc: KubeConfig;
  log: Logger;
  /** This replica's identity (Lease holder, Event reporter). */
  identity: string;
  /** Namespace to watch; "" for all. */
  namespace: string;
  /** What worker pods get from the controller's configuration. */
  workerDefaults: WorkerDefaults;
  /** Run API for TaskRuns; without it TaskRuns get `Accepted=Unknown` and wait. */
  api?: { url: string; token?: string };
  /** Full resync period. @defaultValue 300000 */
  resyncMs?: number;
  /** TaskRun poll period. @defaultValue 2000 */
  pollMs?: number;
  /**
   * How long a deleted TaskRun waits for its run to be cancelled (and a deleted TaskSchedule for its schedule to be
   * deleted) while the run API cannot be reached. @defaultValue 300000
   */
  cancelGiveUpMs?: number;
  /** The longest a TaskSchedule goes without its schedule being read from the run API (it is read just after each next time anyway). @defaultValue 60000 */
  scheduleReadMs?: number;
  /** Concurrent reconciles. @defaultValue 4 */
  workers?: number;
  /** How often a TaskWorker's backlog is refreshed from the run API (needs `api`). @defaultValue 15000 */
  backlogMs?: number;
  /** Leader election; `undefined` or `enabled: false` acts at once. */
  leaderElection?: { enabled: boolean; namespace: string; name?: string; leaseDurationMs?: number };
  rateLimiter?: RateLimiterOptions;
  /** First informer restart delay after an error. @defaultValue 500 */
  informerRestartMs?: number;
  clock?: Clock;
}

/** Counters for /metrics and tests. */
export interface ControllerStats {
  reconciles: number;
  errors: number;
}

type Key = { kind: "TaskWorker" | "TaskRun" | "TaskSchedule"; namespace: string; name: string };
const keyOf = (k: Key): string => `${k.kind}/${k.namespace}/${k.name}`;
function parseKey(s: string): Key {
  const [kind, namespace, ...rest] = s.split("/");
  return { kind: kind as Key["kind"], namespace: namespace ?? "", name: rest.join("/") };
}

/**
 * The TaskWorker, TaskRun and TaskSchedule controller: informers feed a work queue, a few
 * workers reconcile keys from it, all of it only while this replica holds
 * the leader Lease.
 */
export class Controller {
  readonly kube: Kube;
  readonly stats: ControllerStats = { reconciles: 0, errors: 0 };
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #events: EventRecorder;
  readonly #api: OffloadClient | undefined;
  readonly #elector: LeaderElector | undefined;
  #term: Term | undefined;
  #stopped = false;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#clock = o.clock ?? realClock;
    this.kube = new Kube(o.kc);
    this.#events = new EventRecorder(this.kube, o.identity, o.log);
    // No token given: the client reads OFFLOAD_TOKEN_FILE, the projected ServiceAccount token the chart mounts with
    // OFFLOAD_AUTH=kubernetes (re-read when the kubelet rotates it); an empty string would turn that off.
    this.#api = o.api ? new OffloadClient({ apiUrl: o.api.url, token: o.api.token }) : undefined;
    if (o.leaderElection?.enabled) {
      this.#elector = new LeaderElector({
        coordination: this.kube.coordination,
        namespace: o.leaderElection.namespace,
        name: o.leaderElection.name,
        identity: o.identity,
        leaseDurationMs: o.leaderElection.leaseDurationMs,
        log: o.log,
        clock: this.#clock,
        // Not awaited: the elector must keep renewing while the informers fill their caches.
        onStartedLeading: () => void this.#lead().catch((err: unknown) => o.log.error({ err: messageOf(err) }, "could not start acting")),
        onStoppedLeading: () => this.#follow(),
      });
    }
  }

  /** Starts campaigning (or acting at once without leader election). */
  async start(): Promise<void> {
    if (this.#elector) this.#elector.start();
    else await this.#lead();
  }

  /** Stops acting, releases the Lease, stops the informers. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#elector) await this.#elector.stop();
    await this.#follow();
  }

  get isLeader(): boolean {
    return this.#term !== undefined;
  }

  /** Ready to serve: a standby replica is ready; a leader once its caches are filled. */
  get ready(): boolean {
    return !this.#term || this.#term.informers.every((i) => i.synced);
  }

  /** Keys waiting in the queue (0 when not leading). */
  get queueLength(): number {
    return this.#term?.queue.length ?? 0;
  }

  /** What `/metrics` reports per TaskWorker (see metrics.ts): the leader's cache and task list; nothing while standing by. */
  readonly metricsSource: TaskWorkerMetricsSource = {
    taskWorkers: () => this.#term?.taskWorkerSamples() ?? [],
    taskList: () => this.#term?.taskList(),
  };

  async #lead(): Promise<void> {
    if (this.#term || this.#stopped) return;
    const term = new Term(this.#o, this.kube, this.#events, this.#api, this.#clock, this.stats);
    this.#term = term;
    this.#log.info({ identity: this.#o.identity, namespace: this.#o.namespace || "(all)" }, "controller acting");
    await term.start();
  }

  async #follow(): Promise<void> {
    const term = this.#term;
    this.#term = undefined;
    if (term) {
      await term.stop();
      this.#log.info({ identity: this.#o.identity }, "controller stopped acting");
    }
  }
}

/** One spell of leadership: informers, a queue and its workers. */
class Term {
  readonly queue: WorkQueue;
  readonly informers: ResilientInformer<KubernetesObject>[] = [];
  readonly #tw: ResilientInformer<KubernetesObject>;
  readonly #tr: ResilientInformer<KubernetesObject>;
  readonly #ts: ResilientInformer<KubernetesObject>;
  readonly #dep: ResilientInformer<V1Deployment>;
  readonly #workers: Promise<void>[] = [];
  #resync: { cancel(): void } | undefined;
  #stopped = false;
  /** The run API's task list, shared by the backlogs, the autoscaler and the TaskRuns' NoWorker check; undefined without a run API. */
  readonly #tasks: TaskWatch | undefined;
  readonly #autoscaler: Autoscaler;
  /** Each autoscaled TaskWorker's backlog as last passed to the queue (see {@link #onTasksChanged}). */
  readonly #loads = new Map<string, number | undefined>();
  /** This term's writes the informer caches may not show yet, per kind (see own-writes.ts). */
  readonly #writes = { taskWorkers: new OwnWrites(), deployments: new OwnWrites(), taskRuns: new OwnWrites(), taskSchedules: new OwnWrites() };

  constructor(
    private readonly o: ControllerOptions,
    private readonly kube: Kube,
    private readonly events: EventRecorder,
    private readonly api: OffloadClient | undefined,
    private readonly clock: Clock,
    private readonly stats: ControllerStats,
  ) {
    this.queue = new WorkQueue(new RateLimiter(o.rateLimiter, clock), clock);
    if (o.api) {
      // Its own client with a short timeout (the long-poll's wait comes on top): a run API that hangs is noticed in seconds.
      const lister = new OffloadClient({ apiUrl: o.api.url, token: o.api.token, requestTimeoutMs: 5000 });
      this.#tasks = new TaskWatch({ client: lister, log: o.log, clock, onChange: (c) => this.#onTasksChanged(c) });
    }
    this.#autoscaler = new Autoscaler({ kube, events, log: o.log, now: () => clock.now(), snapshot: () => this.#snapshot() });
    const paths = Kube.paths(o.namespace);
    const common = { kc: o.kc, log: o.log, clock, restartBaseMs: o.informerRestartMs };
    const enqueue = (kind: Key["kind"]) => (_e: InformerEvent, obj: KubernetesObject) => {
      const m = obj.metadata;
      if (m?.name) this.queue.add(keyOf({ kind, namespace: m.namespace ?? "", name: m.name }));
    };
    this.#tw = new ResilientInformer({ ...common, name: "taskworkers", path: paths.taskWorkers, list: () => kube.listCustom(TASKWORKER.plural, o.namespace), onEvent: enqueue("TaskWorker") });
    this.#tr = new ResilientInformer({ ...common, name: "taskruns", path: paths.taskRuns, list: () => kube.listCustom(TASKRUN.plural, o.namespace), onEvent: enqueue("TaskRun") });
    this.#ts = new ResilientInformer({ ...common, name: "taskschedules", path: paths.taskSchedules, list: () => kube.listCustom(TASKSCHEDULE.plural, o.namespace), onEvent: enqueue("TaskSchedule") });
    this.#dep = new ResilientInformer<V1Deployment>({
      ...common,
      name: "deployments",
      path: paths.deployments,
      labelSelector: MANAGED_SELECTOR,
      list: () => kube.listManagedDeployments(o.namespace),
      onEvent: (_e, dep) => {
        const owner = dep.metadata?.ownerReferences?.find((r) => r.controller && r.kind === TASKWORKER.kind && r.apiVersion.startsWith("offload.dev/"));
        if (owner) this.queue.add(keyOf({ kind: "TaskWorker", namespace: dep.metadata?.namespace ?? "", name: owner.name }));
      },
    });
    this.informers.push(this.#tw, this.#tr, this.#ts, this.#dep as unknown as ResilientInformer<KubernetesObject>);
  }

  async start(): Promise<void> {
    // Deployments first, so the first TaskWorker reconciles see the Deployments that exist.
    await this.#dep.start();
    this.#tasks?.start();
    await Promise.all([this.#tw.start(), this.#tr.start(), this.#ts.start()]);
    for (let i = 0; i < (this.o.workers ?? 4); i++) this.#workers.push(this.#work());
    this.#scheduleResync();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#resync?.cancel();
    this.queue.shutDown();
    await Promise.all([...this.informers.map((i) => i.stop()), this.#tasks?.stop()]);
    await Promise.all(this.#workers);
  }

  #scheduleResync(): void {
    const ms = this.o.resyncMs ?? 300_000;
    this.#resync = this.clock.setTimeout(() => {
      if (this.#stopped) return;
      for (const obj of this.#tw.list()) if (obj.metadata?.name) this.queue.add(keyOf({ kind: "TaskWorker", namespace: obj.metadata.namespace ?? "", name: obj.metadata.name }));
      for (const obj of this.#tr.list()) if (obj.metadata?.name) this.queue.add(keyOf({ kind: "TaskRun", namespace: obj.metadata.namespace ?? "", name: obj.metadata.name }));
      for (const obj of this.#ts.list()) if (obj.metadata?.name) this.queue.add(keyOf({ kind: "TaskSchedule", namespace: obj.metadata.namespace ?? "", name: obj.metadata.name }));
      this.#scheduleResync();
    }, ms);
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        const r = await this.#reconcile(parseKey(key));
        this.queue.forget(key);
        this.o.log.debug({ key, requeueAfterMs: r.requeueAfterMs }, "reconciled");
        if (r.requeueAfterMs !== undefined) this.queue.addAfter(key, r.requeueAfterMs);
      } catch (err) {
        this.stats.errors++;
        let delay = this.queue.addRateLimited(key);
        if (err instanceof RetryableError && err.retryWithinMs !== undefined && err.retryWithinMs < delay) {
          delay = err.retryWithinMs;
          this.queue.addAfter(key, delay); // the earlier delay wins
        }
        const level = err instanceof RetryableError ? "info" : "warn";
        this.o.log[level]({ key, err: messageOf(err), retryInMs: delay }, "reconcile failed; will retry");
      } finally {
        this.stats.reconciles++;
        this.queue.done(key);
      }
    }
  }

  /**
   * Runs waiting for this pool: the backlog of its listed tasks, or (with no
   * list) of the tasks its pods serve, recognised by their worker ids (pod
   * names). One long-poll of `GET /v1/tasks` serves every TaskWorker (see
   * {@link TaskWatch}).
   */
  async #backlog(name: string, tasks: readonly string[] | undefined): Promise<number | undefined> {
    const all = await this.#tasks?.get();
    const names = all && poolTasks(name, tasks, all);
    if (!all || !names) return undefined;
    return all.filter((x) => names.has(x.name)).reduce((sum, x) => sum + x.backlog, 0);
  }

  /** The TaskWorkers in the informer's cache, as the metrics need them. */
  taskWorkerSamples(): TaskWorkerSample[] {
    const out: TaskWorkerSample[] = [];
    for (const obj of this.#tw.list()) {
      const tw = TaskWorkerSchema.safeParse(obj);
      if (!tw.success) continue;
      const { name, namespace } = tw.data.metadata;
      out.push({ namespace: namespace ?? "", name, tasks: tw.data.spec.tasks, desiredReplicas: tw.data.spec.autoscaling ? tw.data.status?.autoscaling?.desiredReplicas : undefined });
    }
    return out;
  }

  /** The task list the watch last saw; undefined without a run API or while it does not answer. */
  taskList(): readonly TaskInfo[] | undefined {
    const state = this.#tasks?.state();
    return state?.ok ? state.tasks : undefined;
  }

  /** The task list for the autoscaler, or why there is none: the watch's latest, never a request of its own. */
  async #snapshot(): Promise<TaskSnapshot> {
    if (!this.#tasks) {
      return { ok: false, reason: "NoRunApi", message: "the controller has no run API (OFFLOAD_API_URL is not set), so it cannot see the backlog" };
    }
    const state = this.#tasks.state() ?? (await this.#tasks.settled());
    return state.ok ? { ok: true, tasks: state.tasks } : { ok: false, reason: "RunApiUnavailable", message: state.message };
  }

  /**
   * Called when the run API's task load changed: queues each autoscaled
   * TaskWorker whose own backlog (its tasks' runs waiting plus running)
   * changed, so it reacts within the moment, not at its next periodic
   * reconcile. The queue folds repeats of a key into one reconcile.
   */
  #onTasksChanged(change: TaskListChange): void {
    const seen = new Set<string>();
    for (const obj of this.#tw.list()) {
      const tw = TaskWorkerSchema.safeParse(obj);
      if (!tw.success || !tw.data.spec.autoscaling) continue;
      const { name, namespace } = tw.data.metadata;
      const key = keyOf({ kind: "TaskWorker", namespace: namespace ?? "", name });
      const names = change.state.ok ? poolTasks(name, tw.data.spec.tasks, change.state.tasks) : undefined;
      const load = change.state.ok && names ? backlogOf(change.state.tasks, names) : undefined;
      seen.add(key);
      // In-flight counts per worker change all the time; only a change of this pool's total matters here.
      if (this.#loads.has(key) && this.#loads.get(key) === load) continue;
      this.#loads.set(key, load);
      this.queue.add(key);
    }
    for (const key of this.#loads.keys()) if (!seen.has(key)) this.#loads.delete(key);
  }

  #reconcile(k: Key): Promise<ReconcileResult> {
    const now = () => new Date(this.clock.now());
    if (k.kind === "TaskWorker") {
      return reconcileTaskWorker(
        {
          kube: this.kube,
          events: this.events,
          defaults: this.o.workerDefaults,
          getTaskWorker: (ns, name) => this.#tw.get(name, ns),
          getDeployment: (ns, name) => this.#dep.get(name, ns),
          writes: { taskWorkers: this.#writes.taskWorkers, deployments: this.#writes.deployments },
          backlog: this.o.api ? (tasks) => this.#backlog(k.name, tasks) : undefined,
          autoscaler: this.#autoscaler,
          now,
        },
        k.namespace,
        k.name,
      ).then((r) => (this.o.api ? { ...r, requeueAfterMs: Math.min(r.requeueAfterMs ?? Infinity, this.o.backlogMs ?? 15_000) } : r));
    }
    if (k.kind === "TaskSchedule") {
      return reconcileTaskSchedule(
        {
          kube: this.kube,
          events: this.events,
          api: this.api,
          getTaskSchedule: (ns, name) => this.#ts.get(name, ns),
          writes: this.#writes.taskSchedules,
          minRequeueMs: Math.min(1000, this.o.pollMs ?? 2000),
          maxRequeueMs: this.o.scheduleReadMs ?? 60_000,
          deleteGiveUpMs: this.o.cancelGiveUpMs ?? 300_000,
          now,
        },
        k.namespace,
        k.name,
      );
    }
    return reconcileTaskRun(
      {
        kube: this.kube,
        events: this.events,
        api: this.api,
        getTaskRun: (ns, name) => this.#tr.get(name, ns),
        writes: this.#writes.taskRuns,
        tasks: () => this.#tasks?.get() ?? Promise.resolve(undefined),
        pollMs: this.o.pollMs ?? 2000,
        cancelGiveUpMs: this.o.cancelGiveUpMs ?? 300_000,
        now,
      },
      k.namespace,
      k.name,
    );
  }
}

/** The namespace this pod runs in (in-cluster), if any. */
export function podNamespace(): string | undefined {
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
