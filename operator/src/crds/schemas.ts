import { z } from "zod";
import { ConcurrencyPolicySchema, MAX_LIMIT_KEY, PRIORITY, RUN_STATES, TaskNameSchema } from "@offload/sdk/internal";

/**
 * The one source of truth for Offload's custom resources. The controller
 * validates every object it reads with these schemas, and `generate.ts` turns
 * them into the CRD YAML (structural OpenAPI v3) under `crds/`.
 */
export const GROUP = "offload.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Names of the kinds, as the API server knows them. */
export const TASKWORKER = { kind: "TaskWorker", plural: "taskworkers", singular: "taskworker", shortNames: ["tw"], listKind: "TaskWorkerList" } as const;
export const TASKRUN = { kind: "TaskRun", plural: "taskruns", singular: "taskrun", shortNames: ["tr"], listKind: "TaskRunList" } as const;
export const TASKSCHEDULE = { kind: "TaskSchedule", plural: "taskschedules", singular: "taskschedule", shortNames: ["ts"], listKind: "TaskScheduleList" } as const;

/** An object (or any value) whose inner shape Kubernetes keeps as given: affinity, resources, parameters. */
const PRESERVE = { "x-kubernetes-preserve-unknown-fields": true } as const;
const freeObject = (description: string) =>
  z.record(z.string(), z.unknown()).meta({ ...PRESERVE, description });
const stringMap = (description: string) => z.record(z.string(), z.string()).describe(description);

/** A Kubernetes DNS-1123 name (of a volume, an environment variable source, and so on). */
const dnsLabel = z.string().min(1).max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label");

/** metav1.Condition, as in every well-behaved controller's status. */
export const ConditionSchema = z
  .object({
    type: z.string().min(1).max(316).describe("The aspect this condition reports on, e.g. `Ready`."),
    status: z.enum(["True", "False", "Unknown"]).describe("Whether the condition holds: `True`, `False` or `Unknown`."),
    reason: z.string().min(1).max(1024).describe("A CamelCase word saying why the condition has this status."),
    message: z.string().max(32768).describe("A human-readable sentence with details."),
    lastTransitionTime: z.iso.datetime({ offset: true }).describe("When `status` last changed."),
    observedGeneration: z.number().int().min(0).optional().describe("The `.metadata.generation` this condition was computed from."),
  })
  .describe("One condition of the resource, in the shape of Kubernetes' metav1.Condition.");
export type Condition = z.infer<typeof ConditionSchema>;

const conditions = (description: string) =>
  z
    .array(ConditionSchema)
    .meta({ description, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

const EnvVarSchema = z
  .object({
    name: z.string().min(1).max(256).describe("The variable's name."),
    value: z.string().optional().describe("The variable's value. Mutually exclusive with `valueFrom`."),
    valueFrom: freeObject("Where the value comes from (a Secret, a ConfigMap, a field of the pod): Kubernetes' EnvVarSource.").optional(),
  })
  .refine((e) => !(e.value !== undefined && e.valueFrom !== undefined), { message: "set either value or valueFrom, not both" })
  .meta({
    description: "An environment variable of the worker container, as in a Pod's `env`.",
    "x-kubernetes-validations": [{ rule: "!(has(self.value) && has(self.valueFrom))", message: "set either value or valueFrom, not both" }],
  });

const TolerationSchema = z
  .object({
    key: z.string().optional().describe("The taint key the toleration applies to; empty with operator Exists matches all taints."),
    operator: z.enum(["Exists", "Equal"]).optional().describe("`Equal` (the default) or `Exists`."),
    value: z.string().optional().describe("The taint value the toleration matches (with operator `Equal`)."),
    effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional().describe("The taint effect to match; empty matches all effects."),
    tolerationSeconds: z.number().int().optional().describe("With effect `NoExecute`: how long the pod stays bound after the taint appears."),
  })
  .describe("A toleration of the worker pods, as in a Pod's `tolerations`.");

const VolumeSchema = z
  .object({ name: dnsLabel.describe("The volume's name, referenced by `volumeMounts`.") })
  .catchall(z.unknown())
  .meta({ ...PRESERVE, description: "A volume of the worker pods, as in a Pod's `volumes` (name plus one volume source)." });

const VolumeMountSchema = z
  .object({
    name: dnsLabel.describe("The name of a volume in `volumes`."),
    mountPath: z.string().min(1).describe("Where the volume appears in the worker container."),
    readOnly: z.boolean().optional().describe("Mount read-only. Default false."),
    subPath: z.string().optional().describe("A path inside the volume to mount instead of its root."),
  })
  .describe("A mount of one of `volumes` into the worker container.");

/** A uid or gid: Kubernetes' int64, never negative. */
const unixId = (description: string) => z.number().int().min(0).max(2147483647).describe(description);

const SeccompProfileSchema = z
  .object({
    type: z.enum(["RuntimeDefault", "Localhost", "Unconfined"]).describe("`RuntimeDefault` (the container runtime's profile), `Localhost` (a profile file on the node) or `Unconfined`."),
    localhostProfile: z.string().min(1).optional().describe("With type `Localhost`: the profile's path relative to the kubelet's seccomp folder."),
  })
  .describe("The seccomp profile, as in Kubernetes' SeccompProfile.");

/**
 * Both security contexts are merged into the controller's defaults key by key (an object such as `capabilities`
 * or `seccompProfile` key by key too, a list replaces ours), so a TaskWorker that sets only `runAsUser` keeps
 * every other default. Fields not listed here are passed to the pod as given (Kubernetes checks them).
 */
const MERGE_NOTE = "Merged into the controller's defaults field by field (objects such as `capabilities` field by field too; a list replaces the default list): set only what you want to change.";

const PodSecurityContextSchema = z
  .object({
    runAsNonRoot: z.boolean().optional().describe("Refuse to start a container whose user is root. Default true."),
    runAsUser: unixId("The uid the containers run as. Default 1000 (the Offload worker image's user).").optional(),
    runAsGroup: unixId("The primary gid of the containers' processes. Default 1000.").optional(),
    fsGroup: unixId("A gid that owns the pod's volumes (so a non-root user can read the projected token and write volumes). Default 1000.").optional(),
    fsGroupChangePolicy: z.enum(["OnRootMismatch", "Always"]).optional().describe("When the kubelet changes volume ownership to fsGroup. Default `OnRootMismatch` (only when the volume's root does not match: fast restarts)."),
    supplementalGroups: z.array(unixId("A gid.")).max(64).optional().describe("More gids for the containers' processes. Default none."),
    seccompProfile: SeccompProfileSchema.optional(),
  })
  .catchall(z.unknown())
  .meta({
    ...PRESERVE,
    description: `The worker pods' security context (Kubernetes' PodSecurityContext). Defaults: runAsNonRoot true, runAsUser, runAsGroup and fsGroup 1000, fsGroupChangePolicy OnRootMismatch, seccompProfile RuntimeDefault. ${MERGE_NOTE}`,
  });

const ContainerSecurityContextSchema = z
  .object({
    allowPrivilegeEscalation: z.boolean().optional().describe("Let a process gain more privileges than its parent (setuid binaries). Default false."),
    readOnlyRootFilesystem: z.boolean().optional().describe("Mount the container's root filesystem read-only; /tmp is a writable emptyDir. Default true."),
    runAsNonRoot: z.boolean().optional().describe("Refuse to start the container if its user is root. Default true."),
    runAsUser: unixId("The uid of the container's processes; overrides the pod's. Default: the pod's.").optional(),
    runAsGroup: unixId("The primary gid of the container's processes; overrides the pod's. Default: the pod's.").optional(),
    privileged: z.boolean().optional().describe("Run the container privileged (as root on the host). Default: not set (false)."),
    capabilities: z
      .object({
        add: z.array(z.string().min(1).describe("A capability, e.g. `NET_BIND_SERVICE`.")).max(64).optional().describe("Capabilities to add back. Default none."),
        drop: z.array(z.string().min(1).describe("A capability, or `ALL`.")).max(64).optional().describe("Capabilities to drop. Default `[ALL]`."),
      })
      .describe("Linux capabilities of the container's processes. Default: drop ALL.")
      .optional(),
    seccompProfile: SeccompProfileSchema.optional(),
  })
  .catchall(z.unknown())
  .meta({
    ...PRESERVE,
    description: `The worker container's security context (Kubernetes' SecurityContext). Defaults: allowPrivilegeEscalation false, readOnlyRootFilesystem true (with a writable emptyDir at /tmp), runAsNonRoot true, capabilities drop ALL. ${MERGE_NOTE}`,
  });

/** Volumes the controller adds to worker pods (desired.ts): /tmp, and the run API token with kubernetes auth. */
export const CONTROLLER_VOLUMES = { tmp: "offload-tmp", token: "offload-token" } as const;
/** A TaskWorker's own volumes may not take their names. */
const RESERVED_VOLUMES = Object.values(CONTROLLER_VOLUMES);

const PodTemplateSchema = z
  .object({
    labels: stringMap("Extra labels on the worker pods (the controller's own labels take precedence).").optional(),
    annotations: stringMap("Extra annotations on the worker pods, e.g. for a service mesh or metrics scraping.").optional(),
    nodeSelector: stringMap("Node labels the worker pods must run on.").optional(),
    tolerations: z.array(TolerationSchema).max(64).describe("Taints the worker pods tolerate.").optional(),
    affinity: freeObject("Kubernetes' Affinity of the worker pods (node, pod and anti-affinity), as in a Pod spec.").optional(),
    serviceAccountName: z.string().min(1).describe("The ServiceAccount the worker pods run as. Default: the namespace's `default`.").optional(),
    volumes: z.array(VolumeSchema).max(64).describe("Volumes of the worker pods.").optional(),
    volumeMounts: z.array(VolumeMountSchema).max(64).describe("Where `volumes` are mounted in the worker container.").optional(),
    automountServiceAccountToken: z
      .boolean()
      .describe("Mount the ServiceAccount's Kubernetes API token, for tasks that call the Kubernetes API. Default false: workers do not need it (the run API token, when auth is `kubernetes`, is a separate projected volume).")
      .optional(),
    securityContext: PodSecurityContextSchema.optional(),
    containerSecurityContext: ContainerSecurityContextSchema.optional(),
  })
  .refine((p) => (p.volumeMounts ?? []).every((m) => (p.volumes ?? []).some((v) => v.name === m.name)), {
    message: "every volumeMounts[].name must name one of volumes",
    path: ["volumeMounts"],
  })
  .refine((p) => !(p.volumes ?? []).some((v) => (RESERVED_VOLUMES as readonly string[]).includes(v.name)), {
    message: `volume names ${RESERVED_VOLUMES.join(" and ")} are the controller's: pick another name`,
    path: ["volumes"],
  })
  .meta({
    description: "Settings of the worker pods beyond the container itself.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
        message: "every volumeMounts[].name must name one of volumes",
      },
      {
        rule: `!has(self.volumes) || self.volumes.all(v, !(v.name in [${RESERVED_VOLUMES.map((n) => `'${n}'`).join(", ")}]))`,
        message: `volume names ${RESERVED_VOLUMES.join(" and ")} are the controller's: pick another name`,
      },
    ],
  });

/** The scale-down delay when `spec.autoscaling.scaleDownDelaySeconds` is not set. */
export const DEFAULT_SCALE_DOWN_DELAY_SECONDS = 60;

/**
 * Sizing a pool on its backlog. The controller then owns `spec.replicas`
 * (it writes it through the scale subresource, as a HorizontalPodAutoscaler
 * would); see docs/kubernetes.md "Autoscaling".
 */
export const AutoscalingSchema = z
  .object({
    minReplicas: z
      .number()
      .int()
      .min(0)
      .max(10000)
      .default(0)
      .describe("Fewest worker pods. 0 (the default) lets an idle pool scale to zero; a run delayed then gets a pod within a second or two."),
    maxReplicas: z.number().int().min(1).max(10000).describe("Most worker pods, however long the backlog."),
    targetBacklogPerReplica: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        "Runs waiting plus running per worker pod: the pool is sized to ceil(backlog / this), within minReplicas and maxReplicas. " +
          "Default: `concurrency` (one pod for every `concurrency` runs). The backlog is that of every task this pool serves; " +
          "when two TaskWorkers serve the same task, each counts that task's whole backlog, so that no run is left without a pod " +
          "(together they may run more pods than needed: give each task one autoscaled pool for an exact fit).",
      ),
    scaleDownDelaySeconds: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
      .describe(
        "How long a lower size must have been wanted before pods go (the highest size wanted within this window is kept, " +
          "as a HorizontalPodAutoscaler's stabilization window does), so a backlog that comes and goes does not make pods flap. " +
          "Scaling up is never delayed.",
      ),
  })
  .refine((a) => a.minReplicas <= a.maxReplicas, { message: "minReplicas must not exceed maxReplicas: lower minReplicas or raise maxReplicas", path: ["minReplicas"] })
  .meta({
    description:
      "Size the pool on its backlog instead of `replicas`. With it set the controller owns `replicas`: `kubectl scale` still works, " +
      "but the next decision (on the next change of backlog, or within seconds) sets the size the backlog asks for again, as with a " +
      "HorizontalPodAutoscaler; set minReplicas equal to maxReplicas, or remove autoscaling, to pin a size. Before a scale-down the " +
      "controller marks each pod with controller.kubernetes.io/pod-deletion-cost = its runs in flight, so idle pods go first.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
        message: "minReplicas must not exceed maxReplicas: lower minReplicas or raise maxReplicas",
        fieldPath: ".minReplicas",
      },
    ],
  });
export type Autoscaling = z.output<typeof AutoscalingSchema>;

// Without a list of tasks the controller learns a pool's tasks from its running pods' heartbeats: at zero pods
// there are none, so a delayed run would never get a pod.
const SCALE_TO_ZERO_NEEDS_TASKS =
  "autoscaling with minReplicas 0 needs spec.tasks: with no pod running the controller cannot tell which tasks this pool serves; list them in spec.tasks or set minReplicas to 1 or more";

/** What a TaskWorker asks for: a pool of worker pods serving a module of tasks. */
export const TaskWorkerSpecSchema = z
  .object({
    image: z.string().min(1).describe("The container image of the worker: the Offload worker runtime plus your task module."),
    module: z.string().min(1).describe("The module the worker loads its tasks from (a path or package name inside the image); passed as OFFLOAD_MODULE."),
    tasks: z
      .array(TaskNameSchema.describe("A task name."))
      .min(1)
      .max(100)
      .describe("The tasks this pool serves. Default: every task the module exports.")
      .optional(),
    replicas: z.number().int().min(0).max(10000).default(1).describe("How many worker pods to run. Also set by `kubectl scale` and HorizontalPodAutoscalers (scale subresource)."),
    concurrency: z.number().int().min(1).max(10000).default(4).describe("How many runs each pod works on at once; passed as OFFLOAD_CONCURRENCY. The worker's own default is also 4."),
    env: z.array(EnvVarSchema).max(256).describe("Extra environment variables of the worker container.").optional(),
    resources: z
      .object({
        limits: z.record(z.string(), z.unknown()).meta({ ...PRESERVE, description: "Most CPU, memory, … a worker container may use (quantities)." }).optional(),
        requests: z.record(z.string(), z.unknown()).meta({ ...PRESERVE, description: "CPU, memory, … reserved for each worker container (quantities)." }).optional(),
      })
      .meta({ ...PRESERVE, description: "The worker container's resource requests and limits, as in a container's `resources`." })
      .optional(),
    podTemplate: PodTemplateSchema.optional(),
    autoscaling: AutoscalingSchema.optional(),
    drainSeconds: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(30)
      .describe("How long a stopping pod may finish the runs it has before it is killed; its termination grace period is this plus a margin."),
  })
  .refine((s) => !s.tasks || new Set(s.tasks).size === s.tasks.length, { message: "tasks must not repeat a name", path: ["tasks"] })
  .refine((s) => !s.autoscaling || s.tasks !== undefined || s.autoscaling.minReplicas > 0, { message: SCALE_TO_ZERO_NEEDS_TASKS, path: ["tasks"] })
  .meta({
    description: "The desired pool of worker pods.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.tasks) || self.tasks.all(t, self.tasks.exists_one(u, u == t))",
        message: "tasks must not repeat a name",
      },
      {
        rule: "!has(self.autoscaling) || has(self.tasks) || (has(self.autoscaling.minReplicas) && self.autoscaling.minReplicas > 0)",
        message: SCALE_TO_ZERO_NEEDS_TASKS,
      },
    ],
  });
export type TaskWorkerSpec = z.output<typeof TaskWorkerSpecSchema>;

export const TaskWorkerStatusSchema = z
  .object({
    replicas: z.number().int().min(0).describe("Worker pods that exist (from the Deployment).").optional(),
    readyReplicas: z.number().int().min(0).describe("Worker pods that are ready to take runs.").optional(),
    selector: z.string().describe("The label selector of the worker pods, as a string (for the scale subresource and HPAs).").optional(),
    observedGeneration: z.number().int().min(0).describe("The `.metadata.generation` this status was computed from.").optional(),
    conditions: conditions("`Ready`: all wanted pods are ready. `Progressing`: a change is rolling out. `Degraded`: the controller cannot make what the spec asks for. With `spec.autoscaling`: `ScalingActive` (False when the run API cannot tell the backlog: the size is then left alone) and `ScalingLimited` (True while minReplicas or maxReplicas holds the size back).").optional(),
    backlog: z.number().int().min(0).describe("Runs of this pool's tasks waiting for a worker, as the run API last reported.").optional(),
    autoscaling: z
      .object({
        desiredReplicas: z.number().int().min(0).describe("The size the autoscaler last decided on.").optional(),
        backlog: z.number().int().min(0).describe("Runs of this pool's tasks waiting or running, as the autoscaler last counted them.").optional(),
        lastScaleTime: z.iso.datetime({ offset: true }).describe("When the autoscaler last changed `spec.replicas`.").optional(),
        reason: z.string().max(1024).describe("Why the autoscaler wants `desiredReplicas`, in words.").optional(),
      })
      .describe("What the autoscaler decided (with `spec.autoscaling` set); conditions `ScalingActive` and `ScalingLimited` say whether it can act and whether a bound holds it.")
      .optional(),
  })
  .describe("What the controller last observed of the pool.");
export type TaskWorkerStatus = z.output<typeof TaskWorkerStatusSchema>;

export const TaskRunSpecSchema = z
  .object({
    task: TaskNameSchema.describe("The name of the task to run."),
    parameters: z
      .unknown()
      .meta({ ...PRESERVE, description: "The task's input (any JSON value); the worker checks it against the task's schema." })
      .optional(),
  })
  .meta({
    description: "The run asked for. Submitted once to the run API (the TaskRun's UID is the idempotency key); it cannot be changed afterwards.",
    "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "spec is immutable: a TaskRun is submitted once; create a new TaskRun instead" }],
  });
export type TaskRunSpec = z.output<typeof TaskRunSpecSchema>;

export const TaskRunStatusSchema = z
  .object({
    state: z.enum(RUN_STATES).describe("The run's state as the run API reports it.").optional(),
    runId: z.string().describe("The id of the run in the run API.").optional(),
    attempts: z.number().int().min(0).describe("How many times a worker has started the run.").optional(),
    startedAt: z.iso.datetime({ offset: true }).describe("When a worker last started the run.").optional(),
    finishedAt: z.iso.datetime({ offset: true }).describe("When the run reached a terminal state.").optional(),
    error: z
      .object({
        type: z.string().describe("The error's class name, e.g. `TypeError`."),
        message: z.string().describe("The error's message."),
      })
      .describe("Why the run failed.")
      .optional(),
    resultSummary: z.string().max(512).describe("The start of the run's result as JSON (the full result is in the run API).").optional(),
    conditions: conditions("`Accepted`: the run API took the run (False with reason `Invalid` when it refused it). `Succeeded`: the run completed.").optional(),
    observedGeneration: z.number().int().min(0).describe("The `.metadata.generation` this status was computed from.").optional(),
  })
  .describe("The run as the controller last saw it in the run API.");
export type TaskRunStatus = z.output<typeof TaskRunStatusSchema>;

/**
 * A cron schedule of runs of one task, as CronJob's fields. The controller hands it to the run API
 * (`PUT /v1/schedules/taskschedule.<name>`), which fires the runs; the cron expression and time zone are
 * checked there (cron-parser), so one reader decides what is valid and the answer lands in `status.conditions`.
 */
export const TaskScheduleSpecSchema = z
  .object({
    schedule: z
      .string()
      .min(1)
      .max(200)
      .describe("A cron expression: five fields (minute hour day-of-month month day-of-week), or six with seconds first; `@hourly`, `@daily` and the like too."),
    timeZone: z.string().min(1).max(64).describe("An IANA time zone the schedule is read in, e.g. `Europe/Paris`. Default: UTC.").optional(),
    task: TaskNameSchema.describe("The name of the task each scheduled time runs."),
    parameters: z
      .unknown()
      .meta({ ...PRESERVE, description: "The task's input for every run (any JSON value); checked against the schema a worker registered for the task, if any." })
      .optional(),
    concurrencyPolicy: z
      .enum(ConcurrencyPolicySchema.options)
      .default("Allow")
      .describe("What a scheduled time does while the schedule's last run has not finished, as a CronJob: `Allow` (the default) starts another run, `Forbid` skips this time, `Replace` cancels the unfinished run and starts a new one."),
    suspend: z.boolean().default(false).describe("True: no new runs until it is false again; times that pass meanwhile are missed. Default false."),
    startingDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .max(366 * 86_400)
      .describe("A time missed while no run API was up still fires if it is at most this many seconds late (only the latest missed time, once). Default: the latest missed time always fires.")
      .optional(),
    priority: z
      .number()
      .int()
      .min(PRIORITY.first)
      .max(PRIORITY.last)
      .describe(`The priority of the runs it starts: ${PRIORITY.first} (first) … ${PRIORITY.last} (last); applies among runs waiting on a task's concurrency or rate limit. Default ${PRIORITY.default}.`)
      .optional(),
    concurrencyKey: z
      .string()
      .min(1)
      .max(MAX_LIMIT_KEY)
      .describe("The concurrency key its runs count under when the task's concurrency limit is per key (what the task's `concurrency.key` would compute from `parameters`). Unset: the whole task's.")
      .optional(),
    rateLimitKey: z
      .string()
      .min(1)
      .max(MAX_LIMIT_KEY)
      .describe("The rate-limit key its runs count under when the task's rate limit is per key. Unset: the whole task's.")
      .optional(),
  })
  .describe("When to run which task, with what input.");
export type TaskScheduleSpec = z.output<typeof TaskScheduleSpecSchema>;

export const TaskScheduleStatusSchema = z
  .object({
    lastScheduleTime: z.iso.datetime({ offset: true }).describe("The last scheduled time that started a run.").optional(),
    lastRunId: z.string().describe("The id (in the run API) of the run started at `lastScheduleTime`.").optional(),
    nextScheduleTime: z.iso.datetime({ offset: true }).describe("The next time a run starts; absent while suspended or not yet accepted.").optional(),
    observedGeneration: z.number().int().min(0).describe("The `.metadata.generation` the run API last accepted (or refused).").optional(),
    conditions: conditions("`Ready`: the run API holds the schedule as the spec says (False with reason `InvalidSchedule` when it refused it, with its message; `ApiUnavailable` while it cannot be reached).").optional(),
  })
  .describe("The schedule as the run API last reported it.");
export type TaskScheduleStatus = z.output<typeof TaskScheduleStatusSchema>;

/** The Kubernetes object metadata the controller relies on (the rest is kept but not checked). */
export const ObjectMetaSchema = z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    deletionTimestamp: z.unknown().optional(),
});

export const TaskWorkerSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(TASKWORKER.kind),
  metadata: ObjectMetaSchema,
  spec: TaskWorkerSpecSchema,
  status: TaskWorkerStatusSchema.optional(),
});
export type TaskWorker = z.output<typeof TaskWorkerSchema>;

export const TaskRunSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(TASKRUN.kind),
  metadata: ObjectMetaSchema,
  spec: TaskRunSpecSchema,
  status: TaskRunStatusSchema.optional(),
});
export type TaskRun = z.output<typeof TaskRunSchema>;

export const TaskScheduleSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(TASKSCHEDULE.kind),
  metadata: ObjectMetaSchema,
  spec: TaskScheduleSpecSchema,
  status: TaskScheduleStatusSchema.optional(),
});
export type TaskSchedule = z.output<typeof TaskScheduleSchema>;
