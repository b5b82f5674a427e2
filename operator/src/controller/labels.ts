/** Labels and names shared by everything the controller makes. */
export const FIELD_MANAGER = "offload-controller";
export const MANAGED_BY = "offload-controller";
const WORKER_APP = "offload-worker";
export const L = {
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
  managedBy: "app.kubernetes.io/managed-by",
  taskworker: "offload.dev/taskworker",
} as const;

/**
 * The finalizer the controller puts on a TaskRun it submits, so that deleting
 * the TaskRun cancels its run first; removed once the run has finished.
 */
export const CANCEL_RUN_FINALIZER = "offload.dev/cancel-run";

/** The label selector that picks the Deployments this controller manages. */
export const MANAGED_SELECTOR = `${L.managedBy}=${MANAGED_BY}`;

/** The labels that select one TaskWorker's pods (the Deployment's immutable selector). */
export function selectorLabels(taskWorkerName: string): Record<string, string> {
  return { [L.name]: WORKER_APP, [L.instance]: taskWorkerName };
}

/** `matchLabels` as the string form Kubernetes prints (sorted keys), for the scale subresource. */
export function selectorString(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}
