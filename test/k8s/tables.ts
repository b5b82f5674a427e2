/**
 * Server-side printing: the `meta.k8s.io` Table the real server answers when a
 * client (kubectl get, in its human-readable output) asks for one with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. For custom resources
 * the columns are the CRD version's additionalPrinterColumns
 * (apiextensions-apiserver pkg/registry/customresource/tableconvertor: Name,
 * then each column's simple JSONPath, cells typed by the column's type, a
 * `date` as a duration since); for Pods, Deployments and ReplicaSets those of
 * kube-apiserver's printers (pkg/printers/internalversion/printers.go
 * printPod, printDeployment, printReplicaSet). Other types get no Table, and
 * kubectl falls back to NAME and AGE, as before.
 */
import { getAt, isObj, type Obj } from "./fields.js";
import { apiVersionOf, fieldPath, type ResourceType } from "./resources.js";

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, type: string, description: string, priority = 0, format = ""): Column => ({ name, type, format, description, priority });
const NAME = col("Name", "string", "Name must be unique within a namespace.", 0, "name");
const AGE_DESCRIPTION = "CreationTimestamp is a timestamp representing the server time when this object was created.";

/** Which Table version the Accept header asks for (v1 preferred), if any. */
export function tableVersion(accept: string | undefined): "v1" | "v1beta1" | undefined {
  const offers = (accept ?? "").split(",").map((o) => o.trim());
  const has = (v: string): boolean => offers.some((o) => /;\s*as=Table/.test(o) && new RegExp(`;\\s*v=${v}(;|$)`).test(o) && /;\s*g=meta\.k8s\.io/.test(o));
  return has("v1") ? "v1" : has("v1beta1") ? "v1beta1" : undefined;
}

/** duration.HumanDuration (k8s.io/apimachinery/pkg/util/duration), as AGE columns print. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

/** translateTimestampSince: `<unknown>` for no time. */
const since = (t: unknown): string => (typeof t === "string" && t ? humanDuration(Date.now() - Date.parse(t)) : "<unknown>");

const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});
const specOf = (o: Obj): Obj => (isObj(o.spec) ? o.spec : {});
const statusOf = (o: Obj): Obj => (isObj(o.status) ? o.status : {});
const num = (v: unknown): number => (typeof v === "number" ? v : 0);
const objs = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** metav1.LabelSelectorAsSelector(...).String(): sorted requirements, `<none>` when empty. */
function selectorString(sel: unknown): string {
  if (!isObj(sel)) return "<none>";
  const reqs: [string, string][] = [];
  for (const [k, v] of Object.entries(isObj(sel.matchLabels) ? sel.matchLabels : {})) reqs.push([k, `${k}=${String(v)}`]);
  for (const e of objs(sel.matchExpressions)) {
    const key = String(e.key);
    const values = (Array.isArray(e.values) ? (e.values as unknown[]).map(String) : []).sort().join(",");
    const op = String(e.operator);
    reqs.push([key, op === "In" ? `${key} in (${values})` : op === "NotIn" ? `${key} notin (${values})` : op === "Exists" ? key : `!${key}`]);
  }
  return reqs.length ? reqs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((r) => r[1]).join(",") : "<none>";
}

const containersOf = (o: Obj): Obj[] => objs(specOf(isObj(specOf(o).template) ? (specOf(o).template as Obj) : {}).containers);

/** printPod: READY as ready/total containers, STATUS as the kubelet's reason, Terminating while deleted. */
function podCells(pod: Obj): unknown[] {
  const status = statusOf(pod);
  const containers = objs(specOf(pod).containers);
  let reason = typeof status.reason === "string" && status.reason ? status.reason : String(status.phase ?? "");
  let restarts = 0;
  let readyContainers = 0;
  let hasRunning = false;
  const statuses = objs(status.containerStatuses);
  for (let i = statuses.length - 1; i >= 0; i--) {
    const c = statuses[i]!;
    restarts += num(c.restartCount);
    const state = isObj(c.state) ? c.state : {};
    const waiting = isObj(state.waiting) ? state.waiting : undefined;
    const terminated = isObj(state.terminated) ? state.terminated : undefined;
    if (waiting && waiting.reason) reason = String(waiting.reason);
    else if (terminated && terminated.reason) reason = String(terminated.reason);
    else if (terminated) reason = num(terminated.signal) ? `Signal:${num(terminated.signal)}` : `ExitCode:${num(terminated.exitCode)}`;
    else if (c.ready === true && isObj(state.running)) {
      hasRunning = true;
      readyContainers++;
    }
  }
  if (reason === "Completed" && hasRunning) reason = objs(status.conditions).some((c) => c.type === "Ready" && c.status === "True") ? "Running" : "NotReady";
  if (metaOf(pod).deletionTimestamp !== undefined && status.phase !== "Succeeded" && status.phase !== "Failed") reason = "Terminating";
  const gates = objs(specOf(pod).readinessGates);
  const gateReady = gates.filter((g) => objs(status.conditions).some((c) => c.type === g.conditionType && c.status === "True")).length;
  return [
    metaOf(pod).name,
    `${readyContainers}/${containers.length}`,
    reason,
    String(restarts),
    since(metaOf(pod).creationTimestamp),
    (status.podIP as string | undefined) || "<none>",
    (specOf(pod).nodeName as string | undefined) || "<none>",
    (status.nominatedNodeName as string | undefined) || "<none>",
    gates.length ? `${gateReady}/${gates.length}` : "<none>",
  ];
}

/** The -o wide columns of a Deployment or ReplicaSet (their cells: {@link workloadWide}). */
const wideWorkloadColumns = (selector: string): Column[] => [
  col("Containers", "string", "Names of each container in the template.", 1),
  col("Images", "string", "Images referenced by each container in the template.", 1),
  col("Selector", "string", selector, 1),
];

const workloadWide = (o: Obj): string[] => [containersOf(o).map((c) => String(c.name)).join(","), containersOf(o).map((c) => String(c.image)).join(","), selectorString(specOf(o).selector)];

interface Printer {
  columns: Column[];
  cells(o: Obj): unknown[];
}

const BUILTIN: Record<string, Printer> = {
  "/Pod": {
    columns: [
      NAME,
      col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
      col("Status", "string", "The aggregate status of the containers in this pod."),
      col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
      col("Age", "string", AGE_DESCRIPTION),
      col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
      col("Node", "string", "NodeName indicates in which node this pod is scheduled.", 1),
      col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
      col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
    ],
    cells: podCells,
  },
  "apps/Deployment": {
    columns: [
      NAME,
      col("Ready", "string", "Number of the pod with ready state"),
      col("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
      col("Available", "integer", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
      col("Age", "string", AGE_DESCRIPTION),
      ...wideWorkloadColumns("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
    ],
    cells: (d) => [metaOf(d).name, `${num(statusOf(d).readyReplicas)}/${num(specOf(d).replicas)}`, num(statusOf(d).updatedReplicas), num(statusOf(d).availableReplicas), since(metaOf(d).creationTimestamp), ...workloadWide(d)],
  },
  "apps/ReplicaSet": {
    columns: [
      NAME,
      col("Desired", "integer", "Replicas is the number of desired replicas."),
      col("Current", "integer", "Replicas is the most recently observed number of replicas."),
      col("Ready", "integer", "The number of ready replicas for this replica set."),
      col("Age", "string", AGE_DESCRIPTION),
      ...wideWorkloadColumns("Selector is a label query over pods that should match the replica count."),
    ],
    cells: (rs) => [metaOf(rs).name, num(specOf(rs).replicas), num(statusOf(rs).replicas), num(statusOf(rs).readyReplicas), since(metaOf(rs).creationTimestamp), ...workloadWide(rs)],
  },
};

/** A JSONPath value as kubectl's jsonpath prints it: scalars as text, lists and maps as JSON. */
const jsonPathText = (v: unknown): string => (typeof v === "string" ? v : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));

/** The printer of a custom resource version: Name, then its additionalPrinterColumns (Age by default). */
function crdPrinter(crd: Obj, version: string): Printer {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const v = objs(spec.versions).find((x) => x.name === version) ?? {};
  const declared = objs(v.additionalPrinterColumns);
  const defs = declared.length ? declared : [{ name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: AGE_DESCRIPTION }];
  return {
    columns: [NAME, ...defs.map((d) => col(String(d.name), String(d.type), String(d.description ?? ""), num(d.priority), typeof d.format === "string" ? d.format : ""))],
    cells: (o) => [
      metaOf(o).name,
      ...defs.map((d) => {
        const value = getAt(o, fieldPath(String(d.jsonPath).replace(/^\./, "")));
        if (value === undefined || value === null) return null;
        switch (d.type) {
          case "date":
            return typeof value === "string" ? since(value) : null;
          case "integer":
            return typeof value === "number" ? Math.trunc(value) : null;
          case "number":
            return typeof value === "number" ? value : null;
          case "boolean":
            return typeof value === "boolean" ? value : null;
          default:
            return jsonPathText(value);
        }
      }),
    ],
  };
}

/**
 * `body` (an object or list of type `t`) as a Table, or undefined when the
 * stand-in has no printer for the type. `crd` finds a custom resource's CRD.
 */
export function asTable(body: unknown, t: ResourceType, version: "v1" | "v1beta1", crd: (name: string) => Obj | undefined): Obj | undefined {
  if (!isObj(body)) return undefined;
  const definition = t.crd ? crd(t.crd) : undefined;
  const printer = definition ? crdPrinter(definition, t.version) : BUILTIN[`${t.group}/${t.kind}`];
  if (!printer) return undefined;
  const items = body.kind === `${t.kind}List` ? objs(body.items) : [body];
  const listMeta = isObj(body.metadata) ? body.metadata : {};
  return {
    kind: "Table",
    apiVersion: `meta.k8s.io/${version}`,
    metadata: { resourceVersion: listMeta.resourceVersion, ...(body.kind === `${t.kind}List` && listMeta.continue ? { continue: listMeta.continue } : {}) },
    columnDefinitions: printer.columns,
    rows: items.map((o) => ({
      cells: printer.cells(o),
      // includeObject=Metadata, the default: kubectl reads the namespace and labels from here (-A, --show-labels).
      object: { kind: "PartialObjectMetadata", apiVersion: `meta.k8s.io/${version}`, metadata: metaOf(o) },
    })),
  };
}

/** The served type of an answer's body (`FooList` or `Foo` at its apiVersion), for {@link asTable}. */
export function typeOfBody(body: unknown, types: readonly ResourceType[]): ResourceType | undefined {
  if (!isObj(body) || typeof body.kind !== "string") return undefined;
  const kind = body.kind.replace(/List$/, "");
  return types.find((t) => apiVersionOf(t) === body.apiVersion && t.kind === kind);
}
