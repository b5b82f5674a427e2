/**
 * Every Kubernetes permission the controller uses, and nothing more. The Helm
 * chart's ClusterRole is checked against this list by the chart tests, so a
 * new API call here must come with a new rule (and the other way round).
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const CONTROLLER_RULES: readonly PolicyRule[] = [
  // Informers on TaskWorkers, TaskRuns and TaskSchedules (list and watch; reads come from their caches);
  // status written through the status subresource by JSON merge patch.
  { apiGroups: ["offload.dev"], resources: ["taskworkers", "taskruns", "taskschedules"], verbs: ["list", "watch"] },
  { apiGroups: ["offload.dev"], resources: ["taskworkers/status", "taskruns/status", "taskschedules/status"], verbs: ["patch"] },
  // The autoscaler sets a TaskWorker's replicas through its scale subresource, as a HorizontalPodAutoscaler does.
  { apiGroups: ["offload.dev"], resources: ["taskworkers/scale"], verbs: ["patch"] },
  // Just before a scale-down, the autoscaler lists the TaskWorker's pods and sets their
  // controller.kubernetes.io/pod-deletion-cost (merge patch). No watch: pods matter only at that moment.
  { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch"] },
  // The offload.dev/cancel-run finalizer on TaskRuns and offload.dev/schedule on TaskSchedules, added and removed
  // by patch (a JSON patch guarded by a test of the list, or a merge patch at a resourceVersion).
  { apiGroups: ["offload.dev"], resources: ["taskruns", "taskschedules"], verbs: ["patch"] },
  // One Deployment per TaskWorker: read when not yet in the informer's cache, applied server-side (apply is a
  // PATCH, authorized as create too when it makes the Deployment); deletion is left to garbage collection.
  { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch", "create", "patch"] },
  // Kubernetes Events about what the controller did.
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  // Leader election.
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];
