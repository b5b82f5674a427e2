import { randomBytes } from "node:crypto";
import { PatchStrategy, V1MicroTime, setHeaderOptions, type EventsV1Event } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Kube } from "./kube.js";
import { messageOf } from "./kube.js";

/** The object an event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

const REPORTING_CONTROLLER = "offload.dev/offload-controller";

/** How long a repeat of the same event is folded into the first one's series, as client-go does. */
const SERIES_WINDOW_MS = 6 * 60_000;

/**
 * Records events.k8s.io/v1 Events about what the controller does. The same
 * event repeated within a few minutes updates the first one's `series`
 * instead of making a new object. Failures are logged, never thrown: an event
 * is never worth failing a reconcile for.
 */
export class EventRecorder {
  readonly #recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(
    private readonly kube: Kube,
    private readonly identity: string,
    private readonly log: Logger,
  ) {}

  async record(subject: EventSubject, type: "Normal" | "Warning", reason: string, action: string, note: string): Promise<void> {
    const namespace = subject.metadata.namespace ?? "default";
    const key = `${subject.metadata.uid}|${type}|${reason}|${note}`;
    const now = Date.now();
    for (const [k, v] of this.#recent) if (now - v.at > SERIES_WINDOW_MS) this.#recent.delete(k);
    const prev = this.#recent.get(key);
    try {
      if (prev) {
        prev.count++;
        prev.at = now;
        await this.kube.events.patchNamespacedEvent(
          { name: prev.name, namespace, body: { series: { count: prev.count, lastObservedTime: new V1MicroTime(now) } } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        ).catch(async (err: unknown) => {
          // Gone (expired or deleted): start a new one.
          this.#recent.delete(key);
          this.log.debug({ err: messageOf(err) }, "event series patch failed; creating a new event");
          await this.#create(subject, namespace, type, reason, action, note, key, now);
        });
        return;
      }
      await this.#create(subject, namespace, type, reason, action, note, key, now);
    } catch (err) {
      this.log.warn({ err: messageOf(err), reason }, "could not record event");
    }
  }

  async #create(subject: EventSubject, namespace: string, type: string, reason: string, action: string, note: string, key: string, now: number): Promise<void> {
    const name = `${subject.metadata.name}.${now.toString(16)}${randomBytes(3).toString("hex")}`;
    const body: EventsV1Event = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name, namespace },
      eventTime: new V1MicroTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.identity,
      action,
      reason,
      type,
      note: note.slice(0, 1024),
      regarding: {
        apiVersion: subject.apiVersion,
        kind: subject.kind,
        name: subject.metadata.name,
        namespace: subject.metadata.namespace,
        uid: subject.metadata.uid,
        resourceVersion: subject.metadata.resourceVersion,
      },
    };
    await this.kube.events.createNamespacedEvent({ namespace, body });
    this.#recent.set(key, { name, namespace, count: 1, at: now });
  }
}
