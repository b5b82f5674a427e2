import { V1MicroTime, type CoordinationV1Api, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { messageOf, statusOf } from "./kube.js";
import { realClock, type Clock } from "./queue.js";

/** Options of {@link LeaderElector}; the timing defaults are client-go's. */
export interface LeaderElectionOptions {
  coordination: CoordinationV1Api;
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease. @defaultValue "offload-controller" */
  name?: string;
  /** This replica's identity (its pod name). */
  identity: string;
  /** How long a lease is honoured without renewal. @defaultValue 15000 */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long stops acting. Must be below leaseDurationMs. @defaultValue 2/3 of leaseDurationMs */
  renewDeadlineMs?: number;
  /** How often to try to acquire or renew. @defaultValue leaseDurationMs / 7.5 (2 s of 15 s) */
  retryPeriodMs?: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
  log: Logger;
  clock?: Clock;
}

type Resolved = Required<Omit<LeaderElectionOptions, "clock">> & { clock: Clock };

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
 * acquire when the lease is free, released, or has not been renewed for its
 * duration *as observed locally* (so clocks need not agree); renew every
 * retry period; every write carries the lease's resourceVersion, so of two
 * candidates only one wins (the other gets 409 Conflict). A leader that
 * cannot renew before its renew deadline stops acting before anyone else can
 * take over.
 */
export class LeaderElector {
  readonly #o: Resolved;
  #leader = false;
  #stopped = false;
  #timer: { cancel(): void } | undefined;
  #observed: { key: string; at: number } | undefined;
  #lastRenew = 0;
  #running: Promise<void> | undefined;

  constructor(o: LeaderElectionOptions) {
    const leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.#o = {
      ...o,
      name: o.name ?? "offload-controller",
      leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs ?? Math.floor((leaseDurationMs * 2) / 3),
      retryPeriodMs: o.retryPeriodMs ?? Math.max(50, Math.floor(leaseDurationMs / 7.5)),
      clock: o.clock ?? realClock,
    };
  }

  /** Starts campaigning; returns at once. */
  start(): void {
    this.#stopped = false;
    this.#tick();
  }

  /** Stops campaigning; a leader gives the lease up so that another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    await this.#running;
    if (this.#leader) {
      this.#leader = false;
      await this.#release();
      await this.#o.onStoppedLeading();
    }
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#running = this.#attempt().finally(() => {
      this.#running = undefined;
      if (!this.#stopped) this.#timer = this.#o.clock.setTimeout(() => this.#tick(), this.#o.retryPeriodMs);
    });
  }

  async #attempt(): Promise<void> {
    let ok = false;
    try {
      ok = await this.#tryAcquireOrRenew();
    } catch (err) {
      this.#o.log.warn({ err: messageOf(err) }, "leader election: lease call failed");
    }
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    if (ok) {
      this.#lastRenew = now;
      if (!this.#leader) {
        this.#leader = true;
        this.#o.log.info({ identity: this.#o.identity, lease: `${this.#o.namespace}/${this.#o.name}` }, "became leader");
        await this.#o.onStartedLeading();
      }
    } else if (this.#leader && now - this.#lastRenew > this.#o.renewDeadlineMs) {
      this.#leader = false;
      this.#o.log.warn({ identity: this.#o.identity }, "lost leadership (could not renew the lease in time)");
      await this.#o.onStoppedLeading();
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity, leaseDurationMs, clock } = this.#o;
    const now = clock.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(leaseDurationMs / 1000)),
      acquireTime: new V1MicroTime(now),
      renewTime: new V1MicroTime(now),
      leaseTransitions: 0,
    };
    let lease: V1Lease;
    try {
      lease = await coordination.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      try {
        await coordination.createNamespacedLease({ namespace, body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec } });
        return true;
      } catch (e) {
        if (statusOf(e) === 409) return false;
        throw e;
      }
    }
    const cur = lease.spec ?? {};
    const holder = cur.holderIdentity ?? "";
    const key = `${holder}|${cur.renewTime ? new Date(cur.renewTime).getTime() : ""}|${lease.metadata?.resourceVersion}`;
    if (!this.#observed || this.#observed.key !== key) this.#observed = { key, at: now };
    const durMs = (cur.leaseDurationSeconds ?? Math.ceil(leaseDurationMs / 1000)) * 1000;
    const expired = this.#observed.at + durMs <= now;
    if (holder && holder !== identity && !expired) return false;

    const mine = holder === identity;
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
      spec: {
        ...spec,
        acquireTime: mine && cur.acquireTime ? new V1MicroTime(new Date(cur.acquireTime).getTime()) : spec.acquireTime,
        leaseTransitions: (cur.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      await coordination.replaceNamespacedLease({ name, namespace, body });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw err;
    }
  }

  async #release(): Promise<void> {
    const { coordination, namespace, name, identity, clock } = this.#o;
    try {
      const lease = await coordination.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const now = clock.now();
      await coordination.replaceNamespacedLease({
        name,
        namespace,
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: { leaseDurationSeconds: 1, renewTime: new V1MicroTime(now), acquireTime: new V1MicroTime(now), leaseTransitions: lease.spec?.leaseTransitions ?? 0 },
        },
      });
      this.#o.log.info({ identity }, "released the lease");
    } catch (err) {
      this.#o.log.warn({ err: messageOf(err) }, "could not release the lease");
    }
  }
}
