/**
 * An in-process stand-in for the Kubernetes API server, good enough for the
 * real `@kubernetes/client-node` (and so for the controller) to run its
 * ordinary code paths against: list with resourceVersion, watch streams
 * (newline-delimited JSON) with 410 Gone for expired versions, 409 on stale
 * writes, JSON merge / JSON / apply patches with field managers, the status
 * and scale subresources, generation, finalizers (a DELETE marks an object
 * that has some with `deletionTimestamp`; it goes once they are all removed),
 * owner references with a garbage collector, Leases and Events. No product code: the resource types it
 * knows are listed here.
 */
import { randomUUID, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import {
  changedLeaves,
  clone,
  deepEqual,
  deleteAt,
  fieldsV1,
  getAt,
  isObj,
  jsonPatch,
  keyPath,
  leaves,
  mergeApply,
  mergePatch,
  overlaps,
  setAt,
  type Obj,
} from "./fields.js";

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  /** Has the status subresource: writes to the object ignore `.status`, writes to `/status` change only it. */
  status?: boolean;
  /** Has the scale subresource (paths as in a CRD, without the leading dot). */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
}

export const RESOURCE_TYPES: ResourceType[] = [
  { group: "", version: "v1", plural: "secrets", kind: "Secret" },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap" },
  { group: "", version: "v1", plural: "events", kind: "Event" },
  { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", status: true, scale: { specReplicasPath: "spec.replicas", statusReplicasPath: "status.replicas" } },
  { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease" },
  { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event" },
  {
    group: "offload.dev",
    version: "v1alpha1",
    plural: "taskworkers",
    kind: "TaskWorker",
    status: true,
    scale: { specReplicasPath: "spec.replicas", statusReplicasPath: "status.replicas", labelSelectorPath: "status.selector" },
  },
  { group: "offload.dev", version: "v1alpha1", plural: "taskruns", kind: "TaskRun", status: true },
];

interface Stored {
  obj: Obj;
  /** manager → operation and owned leaf paths */
  managers: Map<string, { operation: "Apply" | "Update"; paths: Set<string>; time: string }>;
}

interface Watcher {
  type: ResourceType;
  namespace: string | undefined;
  selector: Selector;
  fieldName: string | undefined;
  res: ServerResponse;
}

interface LogEntry {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  rt: ResourceType;
  obj: Obj;
}

/** One request as the fake saw it (for tests that assert e.g. that an informer relisted). */
export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  status?: number;
}

type Selector = (labels: Record<string, string>) => boolean;

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const typeKey = (t: ResourceType): string => `${t.group}/${t.version}/${t.plural}`;
const apiVersionOf = (t: ResourceType): string => (t.group ? `${t.group}/${t.version}` : t.version);
const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

export class FakeKube {
  readonly types: ResourceType[];
  readonly requests: RequestRecord[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #store = new Map<string, Stored>();
  readonly #watchers = new Set<Watcher>();
  readonly #tempDirs: string[] = [];
  readonly #log: LogEntry[] = [];
  #rv = 100;
  #compactedRv = 0;
  #port = 0;
  /** While set, every request is answered 503 (as an API server that is restarting). */
  unavailable = false;

  constructor(extraTypes: ResourceType[] = []) {
    this.types = [...RESOURCE_TYPES, ...extraTypes];
  }

  get port(): number {
    return this.#port;
  }
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Starts listening (on `port`, or a free one; again on the old port after {@link stop}). */
  async start(port = this.#port): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on("connection", (s) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    this.#port = typeof addr === "object" && addr ? addr.port : port;
    this.#server = server;
  }

  /** {@link stop}, for good: also removes the kubeconfig files it wrote. For `afterAll`. */
  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.#tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }

  /** Stops listening and cuts every connection (watches included). The stored objects stay, so it can start again. */
  async stop(): Promise<void> {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A KubeConfig pointing at this server. */
  kubeConfig(namespace = "default"): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "fake", token: "fake-token" }],
      contexts: [{ name: "fake", cluster: "fake", user: "fake", namespace }],
      currentContext: "fake",
    });
    return kc;
  }

  /**
   * Writes a kubeconfig file for this server (for a child process's
   * KUBECONFIG); returns its path. Without `dir`, it goes in a temporary
   * folder that {@link close} removes.
   */
  async writeKubeconfig(dir?: string, namespace = "default"): Promise<string> {
    const d = dir ?? (await mkdtemp(join(tmpdir(), "offload-kubeconfig-")));
    if (!dir) this.#tempDirs.push(d);
    const path = join(d, "kubeconfig");
    await writeFile(path, this.kubeConfig(namespace).exportConfig());
    return path;
  }

  /**
   * Ends every open watch with a `410 Gone` ERROR event and forgets history,
   * as an API server does after etcd compaction: clients must relist.
   */
  expireWatches(): void {
    this.#compactedRv = this.#rv + 1;
    this.#log.length = 0;
    const status = statusBody(410, "Expired", "too old resource version");
    for (const w of this.#watchers) {
      w.res.write(JSON.stringify({ type: "ERROR", object: status }) + "\n");
      w.res.end();
    }
    this.#watchers.clear();
  }

  /** Open watch streams (for tests). */
  get watchCount(): number {
    return this.#watchers.size;
  }

  // ---- in-process access for tests (the same code paths as HTTP, minus HTTP) ----

  /** A resource type by plural, optionally with its group: `deployments`, `events.events.k8s.io`. */
  type(plural: string): ResourceType {
    const [p, ...g] = plural.split(".");
    const group = g.length ? g.join(".") : undefined;
    const t = this.types.find((x) => x.plural === p && (group === undefined || x.group === group));
    if (!t) throw new Error(`unknown resource ${plural}`);
    return t;
  }

  get(plural: string, namespace: string, name: string): Obj | undefined {
    const s = this.#store.get(this.#key(this.type(plural), namespace, name));
    return s ? clone(s.obj) : undefined;
  }

  list(plural: string, namespace?: string): Obj[] {
    const t = this.type(plural);
    return [...this.#store.values()]
      .map((s) => s.obj)
      .filter((o) => o.kind === t.kind && apiVersionOf(t) === o.apiVersion && (!namespace || meta(o).namespace === namespace))
      .map(clone);
  }

  /** Creates `obj` as `manager` would with a POST. */
  create(obj: Obj, manager = "test"): Obj {
    const t = this.#typeOfObj(obj);
    const ns = (meta(obj).namespace as string | undefined) ?? "default";
    return this.#create(t, ns, obj, manager);
  }

  /** Merge-patches the status of an object, as another controller (e.g. the Deployment controller) would. */
  patchStatus(plural: string, namespace: string, name: string, status: Obj, manager = "kube-controller-manager"): Obj {
    const t = this.type(plural);
    const cur = this.#mustGet(t, namespace, name);
    const next = clone(cur.obj);
    next.status = mergePatch(next.status, status);
    return this.#update(t, cur, next, manager, "status");
  }

  /** Merge-patches an object (not its status) as `manager`. */
  patch(plural: string, namespace: string, name: string, patch: Obj, manager = "test"): Obj {
    const t = this.type(plural);
    const cur = this.#mustGet(t, namespace, name);
    return this.#update(t, cur, mergePatch(cur.obj, patch) as Obj, manager, t.status ? "main" : "all");
  }

  /**
   * Deletes an object (and, through the garbage collector, what it owns); one
   * with finalizers only gets `metadata.deletionTimestamp` until they are removed.
   */
  delete(plural: string, namespace: string, name: string): void {
    const t = this.type(plural);
    this.#delete(t, this.#mustGet(t, namespace, name));
  }

  /** The managers of an object's fields: manager → sorted paths like `spec.replicas`. */
  managers(plural: string, namespace: string, name: string): Record<string, string[]> {
    const s = this.#mustGet(this.type(plural), namespace, name);
    const out: Record<string, string[]> = {};
    for (const [m, e] of s.managers) out[m] = [...e.paths].map((k) => keyPath(k).join(".")).sort();
    return out;
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(url.searchParams);
    const rec: RequestRecord = { method: req.method ?? "GET", path: url.pathname, query, contentType: req.headers["content-type"] };
    this.requests.push(rec);
    try {
      if (this.unavailable) throw new HttpError(503, "ServiceUnavailable", "the server is currently unable to handle the request");
      const body = await readBody(req);
      const result = this.#route(req.method ?? "GET", url.pathname, query, req.headers["content-type"] ?? "", body, res);
      if (result === "streaming") {
        rec.status = 200;
        return;
      }
      rec.status = result.status;
      send(res, result.status, result.body);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, "InternalError", err instanceof Error ? err.message : String(err));
      rec.status = e.code;
      send(res, e.code, statusBody(e.code, e.reason, e.message));
    }
  }

  #route(method: string, pathname: string, query: Record<string, string>, contentType: string, body: string, res: ServerResponse): { status: number; body: unknown } | "streaming" {
    const seg = pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === "api" && seg.length >= 2) [group, version, rest] = ["", seg[1]!, seg.slice(2)];
    else if (seg[0] === "apis" && seg.length >= 3) [group, version, rest] = [seg[1]!, seg[2]!, seg.slice(3)];
    else throw new HttpError(404, "NotFound", `the server could not find the requested resource (${pathname})`);

    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    const t = this.types.find((x) => x.group === group && x.version === version && x.plural === plural);
    if (!t) throw new HttpError(404, "NotFound", `the server could not find the requested resource (${pathname})`);

    if (!name) {
      if (method === "GET" && (query.watch === "true" || query.watch === "1")) return this.#watch(t, namespace, query, res);
      if (method === "GET") return { status: 200, body: this.#list(t, namespace, query) };
      if (method === "POST") {
        if (!namespace) throw new HttpError(405, "MethodNotAllowed", "create needs a namespace");
        const obj = parseJson(body);
        return { status: 201, body: this.#create(t, namespace, obj, query.fieldManager ?? "unknown", query.dryRun === "All") };
      }
      throw new HttpError(405, "MethodNotAllowed", `${method} is not supported on a collection`);
    }
    if (!namespace) throw new HttpError(404, "NotFound", "namespaced resources need a namespace");
    if (sub && sub !== "status" && !(sub === "scale" && t.scale)) throw new HttpError(404, "NotFound", `no subresource ${sub}`);
    const manager = query.fieldManager ?? "unknown";

    if (method === "GET") {
      const s = this.#mustGet(t, namespace, name);
      return { status: 200, body: sub === "scale" ? this.#scaleOf(t, s.obj) : clone(s.obj) };
    }
    if (method === "DELETE") {
      const s = this.#mustGet(t, namespace, name);
      const gone = this.#delete(t, s);
      return { status: 200, body: gone };
    }
    if (method === "PUT") {
      const input = parseJson(body);
      const s = this.#mustGet(t, namespace, name);
      const rv = meta(input).resourceVersion;
      if (rv !== undefined && rv !== "" && rv !== meta(s.obj).resourceVersion) throw conflict(t, name);
      if (sub === "scale") return { status: 200, body: this.#scaleOf(t, this.#setReplicas(t, s, (getAt(input, ["spec", "replicas"]) as number) ?? 0, manager)) };
      const next = sub === "status" ? { ...clone(s.obj), status: input.status } : { ...input, status: s.obj.status };
      if (sub !== "status" && !t.status) next.status = input.status;
      return { status: 200, body: this.#update(t, s, next, manager, sub === "status" ? "status" : t.status ? "main" : "all") };
    }
    if (method === "PATCH") {
      const ct = contentType.split(";")[0]!.trim();
      const existing = this.#store.get(this.#key(t, namespace, name));
      if (ct === "application/apply-patch+yaml") {
        const patch = parseYaml(body) as Obj;
        if (!isObj(patch)) throw new HttpError(400, "BadRequest", "apply body must be an object");
        if (!query.fieldManager) throw new HttpError(400, "BadRequest", "fieldManager is required for apply requests");
        if (sub === "scale") throw new HttpError(415, "UnsupportedMediaType", "apply to scale is not supported by this fake");
        const force = query.force === "true";
        if (!existing) {
          if (sub) throw new HttpError(404, "NotFound", `${t.plural} "${name}" not found`);
          const created = this.#create(t, namespace, { ...patch, metadata: { ...meta(patch), name, namespace } }, query.fieldManager, false, "Apply");
          return { status: 201, body: created };
        }
        return { status: 200, body: this.#apply(t, existing, patch, query.fieldManager, force, sub === "status" ? "status" : t.status ? "main" : "all") };
      }
      if (!existing) throw new HttpError(404, "NotFound", `${t.plural}.${t.group} "${name}" not found`);
      const input = parseJson(body, true);
      let patched: Obj;
      if (sub === "scale") {
        const scale = this.#scaleOf(t, existing.obj);
        const next = applyNonApply(ct, scale, input);
        return { status: 200, body: this.#scaleOf(t, this.#setReplicas(t, existing, (getAt(next, ["spec", "replicas"]) as number) ?? 0, manager)) };
      }
      patched = applyNonApply(ct, existing.obj, input);
      const rv = meta(patched).resourceVersion;
      if (rv !== undefined && rv !== meta(existing.obj).resourceVersion) throw conflict(t, name);
      if (sub === "status") patched = { ...clone(existing.obj), status: patched.status };
      else if (t.status) patched = { ...patched, status: existing.obj.status };
      return { status: 200, body: this.#update(t, existing, patched, manager, sub === "status" ? "status" : t.status ? "main" : "all") };
    }
    throw new HttpError(405, "MethodNotAllowed", `${method} not supported`);
  }

  #list(t: ResourceType, namespace: string | undefined, query: Record<string, string>): Obj {
    const sel = parseSelector(query.labelSelector);
    const fieldName = parseFieldName(query.fieldSelector);
    const items = [...this.#store.values()]
      .map((s) => s.obj)
      .filter((o) => this.#matches(t, o, namespace, sel, fieldName))
      .map(clone);
    return { apiVersion: apiVersionOf(t), kind: `${t.kind}List`, metadata: { resourceVersion: String(this.#rv) }, items };
  }

  #watch(t: ResourceType, namespace: string | undefined, query: Record<string, string>, res: ServerResponse): "streaming" {
    const rv = query.resourceVersion ? Number(query.resourceVersion) : 0;
    if (rv > 0 && rv < this.#compactedRv) throw new HttpError(410, "Expired", `too old resource version: ${rv} (${this.#compactedRv})`);
    const w: Watcher = { type: t, namespace, selector: parseSelector(query.labelSelector), fieldName: parseFieldName(query.fieldSelector), res };
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    if (rv > 0) {
      for (const e of this.#log) if (e.rv > rv && e.rt === t && this.#matches(t, e.obj, namespace, w.selector, w.fieldName)) res.write(JSON.stringify({ type: e.type, object: e.obj }) + "\n");
    } else {
      for (const s of this.#store.values()) if (this.#matches(t, s.obj, namespace, w.selector, w.fieldName)) res.write(JSON.stringify({ type: "ADDED", object: s.obj }) + "\n");
    }
    this.#watchers.add(w);
    res.on("close", () => this.#watchers.delete(w));
    return "streaming";
  }

  #matches(t: ResourceType, o: Obj, namespace: string | undefined, sel: Selector, fieldName: string | undefined): boolean {
    const m = meta(o);
    return o.kind === t.kind && o.apiVersion === apiVersionOf(t) && (!namespace || m.namespace === namespace) && sel((m.labels as Record<string, string>) ?? {}) && (!fieldName || m.name === fieldName);
  }

  #emit(type: LogEntry["type"], t: ResourceType, obj: Obj): void {
    const snapshot = clone(obj);
    this.#log.push({ rv: Number(meta(obj).resourceVersion), type, rt: t, obj: snapshot });
    if (this.#log.length > 20_000) {
      const dropped = this.#log.splice(0, 10_000);
      this.#compactedRv = dropped[dropped.length - 1]!.rv + 1;
    }
    for (const w of this.#watchers) {
      if (w.type === t && this.#matches(t, snapshot, w.namespace, w.selector, w.fieldName)) w.res.write(JSON.stringify({ type, object: snapshot }) + "\n");
    }
  }

  #key(t: ResourceType, namespace: string, name: string): string {
    return `${typeKey(t)}|${namespace}|${name}`;
  }

  #mustGet(t: ResourceType, namespace: string, name: string): Stored {
    const s = this.#store.get(this.#key(t, namespace, name));
    if (!s) throw new HttpError(404, "NotFound", `${t.plural}${t.group ? `.${t.group}` : ""} "${name}" not found`);
    return s;
  }

  #typeOfObj(obj: Obj): ResourceType {
    const t = this.types.find((x) => x.kind === obj.kind && apiVersionOf(x) === obj.apiVersion);
    if (!t) throw new Error(`unknown kind ${String(obj.apiVersion)}/${String(obj.kind)}`);
    return t;
  }

  #create(t: ResourceType, namespace: string, input: Obj, manager: string, dryRun = false, operation: "Apply" | "Update" = "Update"): Obj {
    const m = { ...meta(input) };
    if (!m.name && typeof m.generateName === "string") m.name = m.generateName + randomBytes(3).toString("hex").slice(0, 5);
    if (!m.name) throw new HttpError(422, "Invalid", "metadata.name: Required value");
    if (m.namespace && m.namespace !== namespace) throw new HttpError(400, "BadRequest", "the namespace of the object does not match the namespace of the request");
    const key = this.#key(t, namespace, m.name as string);
    if (this.#store.has(key)) throw new HttpError(409, "AlreadyExists", `${t.plural}${t.group ? `.${t.group}` : ""} "${String(m.name)}" already exists`);
    const obj: Obj = { ...clone(input), apiVersion: apiVersionOf(t), kind: t.kind };
    if (t.status) delete obj.status;
    delete m.managedFields;
    delete m.generateName;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    obj.metadata = { ...m, namespace, uid: randomUUID(), creationTimestamp: now(), generation: 1, resourceVersion: String(++this.#rv) };
    const stored: Stored = { obj, managers: new Map() };
    const scopeFilter = scope(t.status ? "main" : "all");
    stored.managers.set(manager, { operation, paths: new Set([...leaves(obj)].filter(scopeFilter)), time: now() });
    if (dryRun) {
      this.#rv--;
      return clone(obj);
    }
    this.#renderManaged(stored, t);
    this.#store.set(key, stored);
    this.#emit("ADDED", t, obj);
    return clone(obj);
  }

  /** Writes `next` over `s.obj` within `sc`, tracking which fields `manager` changed. */
  #update(t: ResourceType, s: Stored, next: Obj, manager: string, sc: Scope): Obj {
    const prev = s.obj;
    const cleanNext: Obj = { ...clone(next), apiVersion: prev.apiVersion, kind: prev.kind };
    cleanNext.metadata = { ...meta(next), ...pickSystem(meta(prev)) };
    // Set by DELETE only: a write can neither set nor clear them.
    for (const k of ["deletionTimestamp", "deletionGracePeriodSeconds"]) if (meta(prev)[k] === undefined) delete meta(cleanNext)[k];
    refuseNewFinalizers(t, prev, cleanNext);
    const inScope = scope(sc);
    const changed = [...changedLeaves(prev, cleanNext)].filter(inScope);
    if (changed.length === 0 && deepEqual(stripSystem(prev), stripSystem(cleanNext))) return clone(prev);
    for (const k of changed) {
      const present = getAt(cleanNext, keyPath(k)) !== undefined;
      for (const [m, e] of s.managers) {
        if (m === manager) continue;
        for (const p of [...e.paths]) if (overlaps(p, k)) e.paths.delete(p);
      }
      if (present) {
        const mine = s.managers.get(manager) ?? { operation: "Update" as const, paths: new Set<string>(), time: now() };
        if (mine.operation === "Apply" && s.managers.has(manager)) {
          // an Update by a manager that also applies is tracked separately, as Kubernetes does
          const key = `${manager}\u0000Update`;
          const upd = s.managers.get(key) ?? { operation: "Update" as const, paths: new Set<string>(), time: now() };
          upd.paths.add(k);
          s.managers.set(key, upd);
        } else {
          mine.paths.add(k);
          mine.time = now();
          s.managers.set(manager, mine);
        }
      }
    }
    return this.#commit(t, s, cleanNext);
  }

  /** Server-side apply of `patch` by `manager` within `sc`. */
  #apply(t: ResourceType, s: Stored, patch: Obj, manager: string, force: boolean, sc: Scope): Obj {
    const inScope = scope(sc);
    const body: Obj = clone(patch);
    if (sc === "main") delete body.status;
    if (sc === "status") for (const k of Object.keys(body)) if (!["apiVersion", "kind", "metadata", "status"].includes(k)) delete body[k];
    if (sc === "status") body.metadata = { name: meta(body).name };
    const applied = new Set([...leaves(body)].filter(inScope));
    const conflicts: string[] = [];
    for (const [m, e] of s.managers) {
      if (m === manager) continue;
      for (const p of e.paths) {
        for (const a of applied) {
          if (overlaps(p, a) && !deepEqual(getAt(s.obj, keyPath(a)), getAt(body, keyPath(a)))) conflicts.push(`conflict with "${m.split("\u0000")[0]}": .${keyPath(a).join(".")}`);
        }
      }
    }
    if (conflicts.length && !force) {
      throw new HttpError(409, "Conflict", `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? "s" : ""}: ${[...new Set(conflicts)].join("\n")}`);
    }
    const next = clone(s.obj);
    const before = s.managers.get(manager)?.paths ?? new Set<string>();
    for (const p of before) {
      if (applied.has(p) || !inScope(p)) continue;
      const ownedByOther = [...s.managers].some(([m, e]) => m !== manager && [...e.paths].some((q) => overlaps(q, p)));
      if (!ownedByOther) deleteAt(next, keyPath(p));
    }
    const bodyNoSys = clone(body);
    bodyNoSys.metadata = Object.fromEntries(Object.entries(meta(body)).filter(([k]) => ["labels", "annotations", "ownerReferences", "finalizers"].includes(k)));
    delete bodyNoSys.apiVersion;
    delete bodyNoSys.kind;
    mergeApply(next, bodyNoSys);
    refuseNewFinalizers(t, s.obj, next);
    // Fields applied with a value another manager set too are shared; those whose value changed move to this manager.
    for (const [m, e] of s.managers) {
      if (m === manager) continue;
      for (const p of [...e.paths]) if ([...applied].some((a) => overlaps(p, a) && !deepEqual(getAt(s.obj, keyPath(a)), getAt(body, keyPath(a))))) e.paths.delete(p);
    }
    const kept = [...before].filter((p) => !inScope(p));
    s.managers.set(manager, { operation: "Apply", paths: new Set([...kept, ...applied]), time: now() });
    return this.#commit(t, s, next);
  }

  #commit(t: ResourceType, s: Stored, next: Obj): Obj {
    for (const [m, e] of s.managers) if (e.paths.size === 0) s.managers.delete(m);
    const prev = s.obj;
    if (deepEqual(stripSystem(prev), stripSystem(next))) {
      this.#renderManaged(s, t);
      return clone(s.obj);
    }
    const specChanged = !deepEqual(withoutMetaStatus(prev), withoutMetaStatus(next));
    const m = meta(next);
    m.generation = (meta(prev).generation as number) + (specChanged ? 1 : 0);
    m.resourceVersion = String(++this.#rv);
    s.obj = next;
    this.#renderManaged(s, t);
    // The write that removes the last finalizer of an object being deleted deletes it.
    if (m.deletionTimestamp !== undefined && finalizersOf(next).length === 0) return this.#remove(t, s);
    this.#emit("MODIFIED", t, next);
    return clone(next);
  }

  #renderManaged(s: Stored, t: ResourceType): void {
    meta(s.obj).managedFields = [...s.managers].map(([m, e]) => ({
      manager: m.split("\u0000")[0],
      operation: e.operation,
      apiVersion: apiVersionOf(t),
      time: e.time,
      fieldsType: "FieldsV1",
      fieldsV1: fieldsV1(e.paths),
    }));
  }

  /**
   * DELETE: an object with finalizers is only marked (`deletionTimestamp`,
   * grace period 0, a MODIFIED event; again a no-op); one without goes.
   */
  #delete(t: ResourceType, s: Stored): Obj {
    const m = meta(s.obj);
    if (finalizersOf(s.obj).length === 0) return this.#remove(t, s);
    if (m.deletionTimestamp === undefined) {
      m.deletionTimestamp = now();
      m.deletionGracePeriodSeconds = 0;
      m.resourceVersion = String(++this.#rv);
      this.#emit("MODIFIED", t, s.obj);
    }
    return clone(s.obj);
  }

  #remove(t: ResourceType, s: Stored): Obj {
    const m = meta(s.obj);
    this.#store.delete(this.#key(t, m.namespace as string, m.name as string));
    const gone = clone(s.obj);
    meta(gone).resourceVersion = String(++this.#rv);
    this.#emit("DELETED", t, gone);
    // The garbage collector: dependents go once none of their owners exist (background propagation).
    setImmediate(() => this.#collectGarbage());
    return gone;
  }

  #collectGarbage(): void {
    const uids = new Set([...this.#store.values()].map((s) => meta(s.obj).uid as string));
    for (const s of [...this.#store.values()]) {
      const refs = (meta(s.obj).ownerReferences as { uid: string }[] | undefined) ?? [];
      // A dependent with finalizers is deleted as any object is: marked, and gone once they are removed.
      if (refs.length && meta(s.obj).deletionTimestamp === undefined && refs.every((r) => !uids.has(r.uid))) {
        const t = this.#typeOfObj(s.obj);
        if (this.#store.has(this.#key(t, meta(s.obj).namespace as string, meta(s.obj).name as string))) this.#delete(t, s);
      }
    }
  }

  #scaleOf(t: ResourceType, obj: Obj): Obj {
    const sc = t.scale!;
    const m = meta(obj);
    let selector = sc.labelSelectorPath ? (getAt(obj, sc.labelSelectorPath.split(".")) as string | undefined) : undefined;
    if (!sc.labelSelectorPath) {
      const ml = getAt(obj, ["spec", "selector", "matchLabels"]) as Record<string, string> | undefined;
      selector = ml ? Object.keys(ml).sort().map((k) => `${k}=${ml[k]}`).join(",") : undefined;
    }
    return {
      apiVersion: "autoscaling/v1",
      kind: "Scale",
      metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
      spec: { replicas: getAt(obj, sc.specReplicasPath.split(".")) ?? 0 },
      status: { replicas: getAt(obj, sc.statusReplicasPath.split(".")) ?? 0, ...(selector ? { selector } : {}) },
    };
  }

  #setReplicas(t: ResourceType, s: Stored, replicas: number, manager: string): Obj {
    const next = clone(s.obj);
    setAt(next, t.scale!.specReplicasPath.split("."), replicas);
    return this.#update(t, s, next, manager, t.status ? "main" : "all");
  }
}

type Scope = "main" | "status" | "all";
function scope(sc: Scope): (k: string) => boolean {
  if (sc === "all") return () => true;
  return (k) => (keyPath(k)[0] === "status") === (sc === "status");
}

function meta(o: Obj): Obj {
  if (!isObj(o.metadata)) o.metadata = {};
  return o.metadata as Obj;
}
function pickSystem(m: Obj): Obj {
  const out: Obj = {};
  for (const k of ["name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"]) if (m[k] !== undefined) out[k] = m[k];
  return out;
}
function finalizersOf(o: Obj): string[] {
  const f = meta(o).finalizers;
  return Array.isArray(f) ? (f as string[]) : [];
}
/** Kubernetes lets a write to an object being deleted remove finalizers, never add one (422). */
function refuseNewFinalizers(t: ResourceType, prev: Obj, next: Obj): void {
  if (meta(prev).deletionTimestamp === undefined) return;
  const had = new Set(finalizersOf(prev));
  const added = finalizersOf(next).filter((f) => !had.has(f));
  if (added.length) {
    throw new HttpError(422, "Invalid", `${t.kind} "${String(meta(prev).name)}" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`);
  }
}
function stripSystem(o: Obj): Obj {
  const c = clone(o);
  const m = meta(c);
  delete m.resourceVersion;
  delete m.generation;
  delete m.managedFields;
  return c;
}
function withoutMetaStatus(o: Obj): Obj {
  const c = clone(o);
  delete c.metadata;
  delete c.status;
  return c;
}

function applyNonApply(ct: string, target: Obj, input: unknown): Obj {
  if (ct === "application/json-patch+json") {
    if (!Array.isArray(input)) throw new HttpError(400, "BadRequest", "a JSON patch must be an array");
    try {
      return jsonPatch(target, input as { op: string; path: string; value?: unknown }[]);
    } catch (err) {
      throw new HttpError(422, "Invalid", String(err));
    }
  }
  if (ct === "application/merge-patch+json" || ct === "application/strategic-merge-patch+json") {
    return mergePatch(target, input) as Obj;
  }
  throw new HttpError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${ct})`);
}

function conflict(t: ResourceType, name: string): HttpError {
  return new HttpError(409, "Conflict", `Operation cannot be fulfilled on ${t.plural}${t.group ? `.${t.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
}

function statusBody(code: number, reason: string, message: string): Obj {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (data += c));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

function parseJson(body: string): Obj;
function parseJson(body: string, any: true): unknown;
function parseJson(body: string): unknown {
  try {
    return JSON.parse(body || "{}");
  } catch {
    throw new HttpError(400, "BadRequest", "the body is not JSON");
  }
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated. */
function parseSelector(s: string | undefined): Selector {
  if (!s) return () => true;
  const reqs = s.split(",").map((r) => r.trim()).filter(Boolean).map((r): Selector => {
    let m = /^([^!=]+)!=(.*)$/.exec(r);
    if (m) return (l) => l[m![1]!.trim()] !== m![2]!.trim();
    m = /^([^!=]+)==?(.*)$/.exec(r);
    if (m) return (l) => l[m![1]!.trim()] === m![2]!.trim();
    if (r.startsWith("!")) return (l) => !(r.slice(1) in l);
    return (l) => r in l;
  });
  return (l) => reqs.every((f) => f(l));
}

function parseFieldName(s: string | undefined): string | undefined {
  const m = s ? /metadata\.name==?([^,]+)/.exec(s) : null;
  return m ? m[1] : undefined;
}

/** Starts a fake API server on a free port. */
export async function startFakeKube(extraTypes: ResourceType[] = []): Promise<FakeKube> {
  const k = new FakeKube(extraTypes);
  await k.start();
  return k;
}

