import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesListObject,
  type V1Deployment,
  type V1Pod,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { GROUP, TASKRUN, TASKSCHEDULE, TASKWORKER, VERSION } from "../crds/schemas.js";
import { FIELD_MANAGER, MANAGED_SELECTOR } from "./labels.js";

/**
 * Every Kubernetes API call the controller makes, in one place, so that the
 * list can be checked against `rbac.ts` by reading one file:
 * - offload.dev taskworkers, taskruns, taskschedules: list, watch (informers)
 * - offload.dev taskruns, taskschedules: patch (their `metadata.finalizers`)
 * - offload.dev taskworkers/status, taskruns/status, taskschedules/status: patch
 * - offload.dev taskworkers/scale: patch (the autoscaler sets `spec.replicas`, as an HPA does)
 * - core pods: list, patch (a TaskWorker's pods get their pod-deletion-cost just before a scale-down)
 * - apps deployments: list, watch (informer), get, patch (server-side apply)
 * - events.k8s.io events: create, patch
 * - coordination.k8s.io leases: get, create, update (in leader.ts)
 */
export class Kube {
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  readonly events: EventsV1Api;
  readonly coordination: CoordinationV1Api;
  readonly core: CoreV1Api;

  constructor(readonly kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.events = kc.makeApiClient(EventsV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
  }

  /** List paths for informers; `namespace` empty means all namespaces. */
  static paths(namespace: string) {
    const ns = namespace ? `/namespaces/${namespace}` : "";
    return {
      taskWorkers: `/apis/${GROUP}/${VERSION}${ns}/${TASKWORKER.plural}`,
      taskRuns: `/apis/${GROUP}/${VERSION}${ns}/${TASKRUN.plural}`,
      taskSchedules: `/apis/${GROUP}/${VERSION}${ns}/${TASKSCHEDULE.plural}`,
      deployments: `/apis/apps/v1${ns}/deployments`,
    };
  }

  listCustom(plural: string, namespace: string): Promise<KubernetesListObject<KubernetesObject>> {
    const p = namespace
      ? this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural })
      : this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
    return p as Promise<KubernetesListObject<KubernetesObject>>;
  }

  listManagedDeployments(namespace: string): Promise<KubernetesListObject<V1Deployment>> {
    return namespace
      ? this.apps.listNamespacedDeployment({ namespace, labelSelector: MANAGED_SELECTOR })
      : this.apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED_SELECTOR });
  }

  async getDeployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    try {
      return await this.apps.readNamespacedDeployment({ namespace, name });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Server-side apply of `body` (only the fields the controller owns), taking them over if another manager had them. */
  applyDeployment(body: Record<string, unknown>): Promise<V1Deployment> {
    const meta = body.metadata as { name: string; namespace: string };
    return this.apps.patchNamespacedDeployment(
      { name: meta.name, namespace: meta.namespace, body, fieldManager: FIELD_MANAGER, force: true },
      setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
    );
  }

  /**
   * Replaces an object's `metadata.finalizers` list on the condition that it
   * is still `current`, so that another writer's finalizer is never lost:
   * with a list to compare, a JSON patch whose `test` op fails (422) if the
   * list changed, and which a change elsewhere in the object (its status, a
   * label) does not disturb; with none yet, a merge patch at
   * `resourceVersion` (409 if the object changed since).
   */
  patchFinalizers(plural: string, namespace: string, name: string, current: readonly string[], next: readonly string[], resourceVersion: string): Promise<KubernetesObject> {
    const guarded = current.length > 0;
    const body = guarded
      ? [
          { op: "test", path: "/metadata/finalizers", value: current },
          next.length ? { op: "replace", path: "/metadata/finalizers", value: next } : { op: "remove", path: "/metadata/finalizers" },
        ]
      : { metadata: { finalizers: next.length ? next : null, resourceVersion } };
    return this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural, name, body, fieldManager: FIELD_MANAGER },
      setHeaderOptions("Content-Type", guarded ? PatchStrategy.JsonPatch : PatchStrategy.MergePatch),
    ) as Promise<KubernetesObject>;
  }

  /**
   * Sets `spec.replicas` through the scale subresource (JSON merge patch), as
   * a HorizontalPodAutoscaler does: the one write that RBAC can grant without
   * the right to change anything else of the object. Answers the replicas
   * set and the object's resourceVersion after the write (see own-writes.ts).
   */
  async patchScale(plural: string, namespace: string, name: string, replicas: number): Promise<{ replicas: number; resourceVersion?: string }> {
    const scale = (await this.custom.patchNamespacedCustomObjectScale(
      { group: GROUP, version: VERSION, namespace, plural, name, body: { spec: { replicas } }, fieldManager: FIELD_MANAGER },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as { metadata?: { resourceVersion?: string }; spec?: { replicas?: number } };
    return { replicas: scale.spec?.replicas ?? replicas, resourceVersion: scale.metadata?.resourceVersion };
  }

  /** The pods matching `labelSelector` in `namespace` (one list call, not a watch: see autoscaler.ts). */
  async listPods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }

  /** Sets annotations of a pod (JSON merge patch; a `null` value removes one). */
  annotatePod(namespace: string, name: string, annotations: Record<string, string | null>): Promise<V1Pod> {
    return this.core.patchNamespacedPod(
      { namespace, name, body: { metadata: { annotations } }, fieldManager: FIELD_MANAGER },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  /** JSON merge patch of `{status}` through the status subresource; answers the object as stored. */
  patchStatus(plural: string, namespace: string, name: string, status: unknown): Promise<KubernetesObject> {
    return this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace, plural, name, body: { status }, fieldManager: FIELD_MANAGER },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ) as Promise<KubernetesObject>;
  }
}

/** The HTTP status of a failed Kubernetes call, if it has one. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.statusCode === "number") return e.statusCode;
  if (typeof e?.code === "number") return e.code;
  return undefined;
}

/** A short message of a failed Kubernetes call (the Status message when the server sent one). */
export function messageOf(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
    }
    const m = (parsed as { message?: unknown } | undefined)?.message;
    if (typeof m === "string") return `${err.code}: ${m}`;
    return `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}
