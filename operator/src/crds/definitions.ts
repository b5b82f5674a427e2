import { z } from "zod";
import { toStructural, type JsonSchemaNode } from "./structural.js";
import {
  GROUP,
  TASKRUN,
  TASKSCHEDULE,
  TASKWORKER,
  TaskRunSpecSchema,
  TaskScheduleSpecSchema,
  TaskScheduleStatusSchema,
  TaskRunStatusSchema,
  TaskWorkerSpecSchema,
  TaskWorkerStatusSchema,
  VERSION,
} from "./schemas.js";

/** A CustomResourceDefinition (apiextensions.k8s.io/v1), as plain data ready for YAML. */
export type CustomResourceDefinition = Record<string, unknown>;

function schemaOf(zodSchema: z.ZodType, path: string, missing: string[]): JsonSchemaNode {
  const js = z.toJSONSchema(zodSchema, { io: "input", target: "openapi-3.0", unrepresentable: "throw" }) as JsonSchemaNode;
  delete js.$schema;
  return toStructural(js, path, missing);
}

function rootSchema(kind: string, description: string, spec: z.ZodType, status: z.ZodType): JsonSchemaNode {
  const missing: string[] = [];
  const schema = {
    type: "object",
    description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "The versioned schema of this object: `offload.dev/v1alpha1`." },
      kind: { type: "string", description: `The kind of this object: \`${kind}\`.` },
      // kube-apiserver refuses anything but `type: object` (and name/generateName constraints) on root metadata:
      // the server supplies ObjectMeta's own schema there, so even a description is Forbidden.
      metadata: { type: "object" },
      spec: schemaOf(spec, "spec", missing),
      status: schemaOf(status, "status", missing),
    },
  };
  if (missing.length) throw new Error(`${kind}: fields without a description (add .describe()):\n  ${missing.join("\n  ")}`);
  return schema;
}

function crd(names: { kind: string; plural: string; singular: string; shortNames: readonly string[]; listKind: string }, version: Record<string, unknown>): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${names.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "offload", "app.kubernetes.io/part-of": "offload" },
    },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: names.kind, listKind: names.listKind, plural: names.plural, singular: names.singular, shortNames: [...names.shortNames], categories: ["offload"] },
      versions: [{ name: VERSION, served: true, storage: true, ...version }],
    },
  };
}

const age = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

/** The TaskWorker CRD: status and scale subresources, printer columns for `kubectl get tw`. */
export function taskWorkerCrd(): CustomResourceDefinition {
  return crd(TASKWORKER, {
    schema: {
      openAPIV3Schema: rootSchema(
        TASKWORKER.kind,
        "A pool of Offload worker pods serving the tasks of one module. The controller keeps one Deployment per TaskWorker.",
        TaskWorkerSpecSchema,
        TaskWorkerStatusSchema,
      ),
    },
    subresources: {
      status: {},
      scale: { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" },
    },
    additionalPrinterColumns: [
      { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas", description: "Worker pods ready to take runs." },
      { name: "Desired", type: "integer", jsonPath: ".spec.replicas", description: "Worker pods asked for." },
      { name: "Tasks", type: "string", jsonPath: ".spec.tasks", description: "The tasks served (empty: all the module's tasks)." },
      { name: "Backlog", type: "integer", jsonPath: ".status.backlog", description: "Runs waiting for a worker." },
      { name: "Min", type: "integer", jsonPath: ".spec.autoscaling.minReplicas", priority: 1, description: "Fewest worker pods the autoscaler keeps (empty: not autoscaled)." },
      { name: "Max", type: "integer", jsonPath: ".spec.autoscaling.maxReplicas", priority: 1, description: "Most worker pods the autoscaler runs (empty: not autoscaled)." },
      age,
    ],
  });
}

/** The TaskRun CRD: status subresource, printer columns for `kubectl get tr`. */
export function taskRunCrd(): CustomResourceDefinition {
  return crd(TASKRUN, {
    schema: {
      openAPIV3Schema: rootSchema(
        TASKRUN.kind,
        "One run of a task, asked for declaratively. The controller submits it to the run API once and mirrors the run's state into status.",
        TaskRunSpecSchema,
        TaskRunStatusSchema,
      ),
    },
    subresources: { status: {} },
    additionalPrinterColumns: [
      { name: "Task", type: "string", jsonPath: ".spec.task", description: "The task run." },
      { name: "State", type: "string", jsonPath: ".status.state", description: "The run's state." },
      { name: "Attempts", type: "integer", jsonPath: ".status.attempts", description: "Times a worker started the run." },
      age,
    ],
  });
}

/** The TaskSchedule CRD: status subresource, printer columns for `kubectl get ts` (CronJob's, plus the task and the next time). */
export function taskScheduleCrd(): CustomResourceDefinition {
  return crd(TASKSCHEDULE, {
    schema: {
      openAPIV3Schema: rootSchema(
        TASKSCHEDULE.kind,
        "A cron schedule of runs of one task. The controller hands it to the run API, which starts one run per scheduled time; status mirrors the last and next times.",
        TaskScheduleSpecSchema,
        TaskScheduleStatusSchema,
      ),
    },
    subresources: { status: {} },
    additionalPrinterColumns: [
      { name: "Schedule", type: "string", jsonPath: ".spec.schedule", description: "The cron expression." },
      { name: "Task", type: "string", jsonPath: ".spec.task", description: "The task each time runs." },
      { name: "Suspend", type: "boolean", jsonPath: ".spec.suspend", description: "Whether new runs are held back." },
      { name: "Last Schedule", type: "date", jsonPath: ".status.lastScheduleTime", description: "The last time that started a run." },
      { name: "Next", type: "date", jsonPath: ".status.nextScheduleTime", description: "The next time a run starts." },
      { name: "Last Run", type: "string", jsonPath: ".status.lastRunId", priority: 1, description: "The run started at the last schedule time." },
      age,
    ],
  });
}

/** Every CRD, with the file name it is written to. */
export function allCrds(): { file: string; crd: CustomResourceDefinition }[] {
  return [
    { file: `${TASKWORKER.plural}.${GROUP}.yaml`, crd: taskWorkerCrd() },
    { file: `${TASKRUN.plural}.${GROUP}.yaml`, crd: taskRunCrd() },
    { file: `${TASKSCHEDULE.plural}.${GROUP}.yaml`, crd: taskScheduleCrd() },
  ];
}
