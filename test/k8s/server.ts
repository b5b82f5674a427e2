/**
 * An in-process stand-in for the Kubernetes API server (v1.32), good enough
 * for the real `@kubernetes/client-node` (and so the controller) and the
 * real `kubectl` to run their ordinary code paths against, and held against
 * what a real kube-apiserver answered (`../shared/k8s-conformance/`, replayed
 * by `conformance/replay.ts`).
 *
 * It serves a few built-in types (`resources.ts`, defaulted by
 * `defaults.ts` and checked by `validation.ts` as the real server does) and
 * whatever CustomResourceDefinitions are created in it: a CRD is checked by
 * the schema engine (`schema/`) on the way in, and every write of a custom
 * object goes through the engine's admission (pruning, defaults, OpenAPI and
 * CEL rules).
 * Around that it keeps the API's semantics: namespaces, resourceVersion
 * conflicts, merge / JSON / strategic-merge / apply patches with field
 * managers, the status and scale subresources, generation, finalizers and
 * deletion propagation with a garbage collector, label and field selectors,
 * list + watch (with 410 Expired for compacted versions), and discovery.
 */
import { randomUUID, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { changedLeaves, clone, deepEqual, deleteAt, displayPath, getAt, isObj, keyPath, leaves, mergeApply, mergePatch, overlaps, setAt, type Obj } from "./fields.js";
import { HttpError, conflict, decodeObject, invalid, notFound, notFoundPath, parseFieldValidation, parseJson, readBodyBytes, send, statusBody } from "./http.js";
import { cloneManagers, listKeysOf, managerKey, renderManagedFields, scopeOf, type ManagerEntry, type Subresource } from "./managed-fields.js";
import { APPLY_PATCH, checkPatchType, patchWith } from "./patches.js";
import { finalizersOf, meta, metadataCauses, newFinalizersWhileDeleting, pickSystem, stripSystem, withoutMetaStatus } from "./metadata.js";
import { BUILTIN_TYPES, apiVersionOf, defaultCrd, fieldPath, initialCrdStatus, kindName, resourceName, typeKey, typesOfCrd, type ResourceType } from "./resources.js";
import { labelSelector, fieldSelector, type Matcher } from "./selectors.js";
import { applyBuiltinDefaults } from "./defaults.js";
import { builtinCauses } from "./validation.js";
import { discovery } from "./discovery.js";
import { admitObject, validateCrd, type FieldValidation } from "./schema/index.js";
import { installCrds } from "./crds.js";
import { asTable, tableVersion, typeOfBody } from "./tables.js";
import { Workloads, podDeletionGrace, type WorkloadOptions } from "./workloads/index.js";
import { KubeAuth, type IssueTokenOptions } from "./auth/index.js";

export type { ResourceType } from "./resources.js";

/** A change to a stored object, as the stand-in's own controllers see it (in-process, in order, before any watch sees it). */
export interface StoreEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  resource: ResourceType;
  object: Obj;
}

interface Stored {
  obj: Obj;
  /** `manager\0operation\0subresource` → entry, as managedFields has one entry per such triple. */
  managers: Map<string, ManagerEntry>;
}

/** What one write request carries besides the object. */
interface WriteCtx {
  manager: string;
  dryRun: boolean;
  fieldValidation: FieldValidation;
  /** Filled by admission; sent as Warning headers. */
  warnings: string[];
}

interface Watcher {
  type: ResourceType;
  namespace: string | undefined;
  match: Matcher;
  res: ServerResponse;
  /** Events carry Tables of one row (kubectl get -w), as the client's Accept header asked. */
  table?: "v1" | "v1beta1";
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

interface Answer {
  status: number;
  body: unknown;
  warnings?: string[];
}

/** Namespaces every cluster starts with. */
const INITIAL_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
const CRD_TYPE = BUILTIN_TYPES.find((t) => t.kind === "CustomResourceDefinition")!;
const NAMESPACE_TYPE = BUILTIN_TYPES.find((t) => t.kind === "Namespace")!;

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

export class FakeKube {
  readonly requests: RequestRecord[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #types = new Map<string, ResourceType>();
  readonly #store = new Map<string, Stored>();
  readonly #watchers = new Set<Watcher>();
  readonly #tempDirs: string[] = [];
  readonly #log: LogEntry[] = [];
  #rv = 100;
  /** Watches from below this version get 410 Expired (as after etcd compaction); the history before the start counts as compacted. */
  #compactedRv = 100;
  #port = 0;
  #gcScheduled = false;
  /** While set, every request is answered 503 (as an API server that is restarting). */
  unavailable = false;
  readonly #observers = new Set<(e: StoreEvent) => void>();
  #workloads: Workloads | undefined;
  /** ServiceAccount tokens, TokenReview, RBAC and the access reviews (`auth/`). */
  readonly auth: KubeAuth = new KubeAuth(this);

  constructor(extraTypes: ResourceType[] = []) {
    for (const t of [...BUILTIN_TYPES, ...extraTypes]) this.#types.set(typeKey(t), t);
    for (const name of INITIAL_NAMESPACES) this.#create(NAMESPACE_TYPE, "", { metadata: { name } }, this.#ctx("kube-apiserver"));
    this.auth.bootstrap();
  }

  /**
   * A signed token for ServiceAccount `namespace/name`, as a TokenRequest gives (see {@link IssueTokenOptions}:
   * audiences, lifetime, an already-expired one). Unlike the real server, a missing ServiceAccount (and its
   * namespace) is created first, as a test's setup would.
   */
  issueToken(namespace: string, name: string, opts: IssueTokenOptions = {}): string {
    if (!this.get("serviceaccounts", namespace, name)) this.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } });
    return this.auth.issueToken(namespace, name, opts);
  }

  /** The resource types served now: the built-in ones and those of established CRDs. */
  get types(): ResourceType[] {
    return [...this.#types.values()];
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
    // Pods' lives (e.g. worker processes a test attached) end before the server does.
    await this.#workloads?.close();
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
   * KUBECONFIG, or kubectl's `--kubeconfig`); returns its path. Without
   * `dir`, it goes in a temporary folder that {@link close} removes.
   */
  async writeKubeconfig(dir?: string, namespace = "default"): Promise<string> {
    const d = dir ?? (await mkdtemp(join(tmpdir(), "offload-kubeconfig-")));
    if (!dir) this.#tempDirs.push(d);
    const path = join(d, "kubeconfig");
    await writeFile(path, this.kubeConfig(namespace).exportConfig());
    return path;
  }

  /**
   * Ends every open watch with a `410 Expired` ERROR event and forgets history,
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

  /**
   * Runs the workload controllers (Deployment → ReplicaSet → Pods, a
   * scheduler and a kubelet: `workloads/`) in this stand-in; once per stand-in.
   */
  startWorkloads(opts: WorkloadOptions = {}): Workloads {
    if (this.#workloads) throw new Error("the workload controllers already run in this stand-in: start them once (startFakeKube's workloads option or startWorkloads)");
    this.#workloads = new Workloads(this, opts);
    return this.#workloads;
  }

  /** The workload controllers, if started. */
  get workloads(): Workloads | undefined {
    return this.#workloads;
  }

  /** Calls `fn` with every change to a stored object, synchronously; returns the function that stops it. */
  observe(fn: (e: StoreEvent) => void): () => void {
    this.#observers.add(fn);
    return () => this.#observers.delete(fn);
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
    if (!t) throw new Error(`unknown resource ${plural}: not built in, and no established CRD defines it (did the test install the CRDs?)`);
    return t;
  }

  get(plural: string, namespace: string, name: string): Obj | undefined {
    const t = this.type(plural);
    const s = this.#store.get(this.#key(t, namespace, name));
    return s ? this.#view(t, s.obj) : undefined;
  }

  list(plural: string, namespace?: string): Obj[] {
    const t = this.type(plural);
    return this.#objectsOf(t, namespace).map((o) => this.#view(t, o));
  }

  /**
   * Creates `obj` as `manager` would with a POST (admission included, so an
   * object the real server refuses throws). Unlike the real server, a
   * missing namespace is created first, as a test's setup would.
   */
  create(obj: Obj, manager = "test"): Obj {
    const t = this.#typeOfObj(obj);
    const ns = t.clusterScoped ? "" : ((meta(obj).namespace as string | undefined) ?? "default");
    if (ns) this.ensureNamespace(ns);
    return this.#create(t, ns, obj, this.#ctx(manager));
  }

  /** Creates the namespace unless it exists. */
  ensureNamespace(name: string): void {
    if (!this.#store.has(this.#key(NAMESPACE_TYPE, "", name))) this.#create(NAMESPACE_TYPE, "", { metadata: { name } }, this.#ctx("test"));
  }

  /** Merge-patches the status of an object, as another controller (e.g. the Deployment controller) would. */
  patchStatus(plural: string, namespace: string, name: string, status: Obj, manager = "kube-controller-manager"): Obj {
    const t = this.type(plural);
    const cur = this.#mustGet(t, namespace, name);
    const next = clone(cur.obj);
    next.status = mergePatch(next.status, status);
    return this.#update(t, cur, next, this.#ctx(manager), t.status ? "status" : undefined);
  }

  /** Merge-patches an object (not its status) as `manager`. */
  patch(plural: string, namespace: string, name: string, patch: Obj, manager = "test"): Obj {
    const t = this.type(plural);
    const cur = this.#mustGet(t, namespace, name);
    const next = mergePatch(cur.obj, patch) as Obj;
    if (t.status) next.status = cur.obj.status;
    return this.#update(t, cur, next, this.#ctx(manager), undefined);
  }

  /**
   * Deletes an object (and, through the garbage collector, what it owns); one
   * with finalizers only gets `metadata.deletionTimestamp` until they are
   * removed, and so does a pod bound to a node until its grace period is over
   * (a delete with `gracePeriodSeconds: 0` removes it, as the kubelet does).
   */
  delete(plural: string, namespace: string, name: string, opts: { gracePeriodSeconds?: number } = {}): void {
    const t = this.type(plural);
    this.#delete(t, this.#mustGet(t, namespace, name), undefined, false, opts.gracePeriodSeconds);
  }

  /** The managers of an object's fields: manager → sorted paths like `spec.replicas` (all its operations together). */
  managers(plural: string, namespace: string, name: string): Record<string, string[]> {
    const s = this.#mustGet(this.type(plural), namespace, name);
    const out: Record<string, Set<string>> = {};
    for (const e of s.managers.values()) for (const p of e.paths) (out[e.manager] ??= new Set()).add(displayPath(keyPath(p)));
    return Object.fromEntries(Object.entries(out).map(([m, ps]) => [m, [...ps].sort()]));
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const query = Object.fromEntries(url.searchParams);
    const rec: RequestRecord = { method: req.method ?? "GET", path: url.pathname, query, contentType: req.headers["content-type"] };
    this.requests.push(rec);
    try {
      if (this.unavailable) throw new HttpError(503, "ServiceUnavailable", "the server is currently unable to handle the request");
      const bytes = await readBodyBytes(req);
      const body = bytes.toString("utf8");
      const authAnswer = this.auth.handle(req.method ?? "GET", url.pathname, req.headers, bytes);
      if (authAnswer) {
        rec.status = authAnswer.status;
        send(res, authAnswer.status, authAnswer.body);
        return;
      }
      const result = this.#route(req.method ?? "GET", url.pathname, query, req.headers["content-type"] ?? "", body, res);
      if (result === "streaming") {
        rec.status = 200;
        return;
      }
      rec.status = result.status;
      // kubectl's human-readable get asks for a Table (server-side printing: tables.ts).
      const tableAs = req.method === "GET" ? tableVersion(req.headers.accept) : undefined;
      const tableType = tableAs ? typeOfBody(result.body, this.types) : undefined;
      const table = tableAs && tableType ? asTable(result.body, tableType, tableAs, (name) => this.#crd(name)) : undefined;
      send(res, result.status, table ?? result.body, result.warnings);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, "InternalError", err instanceof Error ? err.message : String(err));
      rec.status = e.code;
      send(res, e.code, statusBody(e.code, e.reason, e.message, e.causes, e.details));
    }
  }

  #route(method: string, pathname: string, query: Record<string, string>, contentType: string, body: string, res: ServerResponse): Answer | "streaming" {
    const disc = method === "GET" ? discovery(pathname, this.types, (crdName) => this.#crd(crdName)) : undefined;
    if (disc) return { status: 200, body: disc };

    const seg = pathname.split("/").filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === "api" && seg.length >= 3) [group, version, rest] = ["", seg[1]!, seg.slice(2)];
    else if (seg[0] === "apis" && seg.length >= 4) [group, version, rest] = [seg[1]!, seg[2]!, seg.slice(3)];
    else throw notFoundPath(pathname);

    const typeAt = (plural: string | undefined): ResourceType | undefined => this.#types.get(`${group}/${version}/${plural}`);
    let namespace: string | undefined;
    // `/namespaces/NAME[/status]` is the Namespace itself; `/namespaces/NAME/PLURAL...` is a namespaced resource.
    if (rest[0] === "namespaces" && rest.length >= 3 && !(rest.length === 3 && ["status", "finalize"].includes(rest[2]!))) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub, ...extra] = rest;
    const t = typeAt(plural);
    if (!t || extra.length) throw notFoundPath(pathname);
    if (t.clusterScoped && namespace !== undefined) throw notFoundPath(pathname);
    const ns = t.clusterScoped ? "" : namespace;

    const fieldValidation = parseFieldValidation(query.fieldValidation);
    const ctx: WriteCtx = { manager: query.fieldManager ?? "unknown", dryRun: query.dryRun === "All", fieldValidation, warnings: [] };
    const answer = (status: number, b: unknown): Answer => ({ status, body: b, warnings: ctx.warnings });

    if (!name) {
      if (method === "GET" && (query.watch === "true" || query.watch === "1")) return this.#watch(t, ns || undefined, query, res);
      if (method === "GET") return answer(200, this.#list(t, ns || undefined, query));
      if (method === "POST") {
        if (ns === undefined) throw new HttpError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (post ${resourceName(t)})`);
        const obj = decodeObject(body);
        // The storage layer refuses it (etcd3 store's Create), which the real server answers as an internal error.
        if (isObj(obj.metadata) && obj.metadata.resourceVersion) throw new HttpError(500, "InternalError", "resourceVersion should not be set on objects to be created");
        return answer(201, this.#view(t, this.#create(t, ns, obj, ctx)));
      }
      throw new HttpError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${method.toLowerCase()} ${resourceName(t)})`);
    }
    if (ns === undefined) throw notFoundPath(pathname);
    if (sub && sub !== "status" && !(sub === "scale" && t.scale)) throw notFoundPath(pathname);
    if (sub === "status" && !t.status) throw notFoundPath(pathname);
    const subresource = sub as Subresource | undefined;

    if (method === "GET") {
      const s = this.#mustGet(t, ns, name);
      return answer(200, subresource === "scale" ? this.#scaleOf(t, s.obj) : this.#view(t, s.obj));
    }
    if (method === "DELETE") {
      const opts = body.trim() ? (parseJson(body) as Obj) : {};
      const policy = (query.propagationPolicy ?? (opts.propagationPolicy as string | undefined)) || undefined;
      const dryRun = ctx.dryRun || (Array.isArray(opts.dryRun) && opts.dryRun.includes("All"));
      const grace = query.gracePeriodSeconds ?? opts.gracePeriodSeconds;
      const graceSeconds = grace === undefined || grace === null || grace === "" ? undefined : Number(grace);
      return answer(200, this.#delete(t, this.#mustGet(t, ns, name), policy, dryRun, graceSeconds));
    }
    if (method === "PUT") return answer(200, this.#put(t, ns, name, subresource, decodeObject(body), ctx));
    if (method === "PATCH") return this.#patch(t, ns, name, subresource, contentType, body, query, ctx);
    throw new HttpError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
  }

  #put(t: ResourceType, ns: string, name: string, sub: Subresource | undefined, input: Obj, ctx: WriteCtx): Obj {
    const s = this.#mustGet(t, ns, name);
    const rv = meta(input).resourceVersion;
    const bodyName = meta(input).name;
    if (bodyName !== undefined && bodyName !== name && sub !== "scale") throw new HttpError(400, "BadRequest", `the name of the object (${String(bodyName)}) does not match the name on the URL (${name})`);
    if (sub === "scale") {
      if (rv !== undefined && rv !== "" && rv !== meta(s.obj).resourceVersion) throw conflict(t, name);
      const replicas = getAt(input, ["spec", "replicas"]);
      return this.#scaleOf(t, this.#setReplicas(t, s, replicas, ctx));
    }
    // Custom resources and CRDs refuse unconditional updates (their strategies' AllowUnconditionalUpdate is false).
    if ((rv === undefined || rv === "") && (t.crd || t === CRD_TYPE)) {
      throw invalid(resourceName(t), name, [{ field: "metadata.resourceVersion", reason: "FieldValueInvalid", message: "Invalid value: 0x0: must be specified for an update" }]);
    }
    if (rv !== undefined && rv !== "" && rv !== meta(s.obj).resourceVersion) throw conflict(t, name);
    const next = sub === "status" ? { ...clone(s.obj), status: input.status } : t.status ? { ...input, status: s.obj.status } : input;
    return this.#view(t, this.#update(t, s, next, ctx, sub));
  }

  #patch(t: ResourceType, ns: string, name: string, sub: Subresource | undefined, contentType: string, body: string, query: Record<string, string>, ctx: WriteCtx): Answer {
    const ct = contentType.split(";")[0]!.trim();
    const existing = this.#store.get(this.#key(t, ns, name));
    if (ct === APPLY_PATCH) {
      if (!query.fieldManager) {
        throw new HttpError(422, "Invalid", `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`, [
          { field: "fieldManager", reason: "FieldValueRequired", message: "Required value: is required for apply patch" },
        ]);
      }
      let patch: unknown;
      try {
        patch = parseYaml(body);
      } catch (err) {
        throw new HttpError(400, "BadRequest", `error decoding YAML: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!isObj(patch)) throw new HttpError(400, "BadRequest", "an apply patch must be an object");
      if (sub === "scale") throw new HttpError(415, "UnsupportedMediaType", "apply patches on the scale subresource are not supported by the stand-in");
      const force = query.force === "true";
      if (!existing) {
        if (sub) throw notFound(t, name);
        const input = { ...patch, metadata: { ...meta(patch as Obj), name, ...(ns ? { namespace: ns } : {}) } };
        const owned = new Set([...leaves(input, [], new Set(), listKeysOf(t))].filter(scopeOf(t, undefined)));
        return { status: 201, body: this.#view(t, this.#create(t, ns, input, ctx, "Apply", owned)), warnings: ctx.warnings };
      }
      return { status: 200, body: this.#view(t, this.#apply(t, existing, patch, ctx, force, sub)), warnings: ctx.warnings };
    }
    checkPatchType(t, ct);
    if (!existing) throw notFound(t, name);
    const input = parseJson(body);
    if (sub === "scale") {
      const next = patchWith(ct, this.#scaleOf(t, existing.obj), input);
      return { status: 200, body: this.#scaleOf(t, this.#setReplicas(t, existing, getAt(next, ["spec", "replicas"]), ctx)), warnings: ctx.warnings };
    }
    let patched = patchWith(ct, existing.obj, input);
    const rv = meta(patched).resourceVersion;
    if (rv !== undefined && rv !== meta(existing.obj).resourceVersion) throw conflict(t, name);
    if (sub === "status") patched = { ...clone(existing.obj), status: patched.status };
    else if (t.status) patched = { ...patched, status: existing.obj.status };
    return { status: 200, body: this.#view(t, this.#update(t, existing, patched, ctx, sub)), warnings: ctx.warnings };
  }

  #list(t: ResourceType, namespace: string | undefined, query: Record<string, string>): Obj {
    const match = this.#matcher(t, query);
    const items = this.#objectsOf(t, namespace)
      .filter(match)
      .map((o) => this.#view(t, o));
    return { apiVersion: apiVersionOf(t), kind: `${t.kind}List`, metadata: { resourceVersion: String(this.#rv), continue: "" }, items };
  }

  #matcher(t: ResourceType, query: Record<string, string>): Matcher {
    const labels = labelSelector(query.labelSelector);
    const fields = fieldSelector(query.fieldSelector, ["metadata.name", "metadata.namespace", ...(t.selectableFields ?? [])]);
    return (o) => labels(o) && fields(o);
  }

  #watch(t: ResourceType, namespace: string | undefined, query: Record<string, string>, res: ServerResponse): "streaming" {
    const match = this.#matcher(t, query);
    const rv = query.resourceVersion ? Number(query.resourceVersion) : 0;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    // As the real server: the watch itself is accepted (200), then one ERROR event says the version is gone.
    if (rv > 0 && rv < this.#compactedRv) {
      res.end(JSON.stringify({ type: "ERROR", object: statusBody(410, "Expired", `too old resource version: ${rv} (${this.#compactedRv})`) }) + "\n");
      return "streaming";
    }
    const w: Watcher = { type: t, namespace, match, res, table: tableVersion(res.req.headers.accept) };
    if (rv > 0) {
      for (const e of this.#log) if (e.rv > rv && e.rt === t && this.#watches(w, e.obj)) res.write(JSON.stringify({ type: e.type, object: this.#watchObject(w, e.obj) }) + "\n");
    } else {
      for (const o of this.#objectsOf(t, namespace)) if (match(o)) res.write(JSON.stringify({ type: "ADDED", object: this.#watchObject(w, o) }) + "\n");
    }
    this.#watchers.add(w);
    res.on("close", () => this.#watchers.delete(w));
    return "streaming";
  }

  /** An object as watcher `w` sees it: at its version, as a Table if it asked for one. */
  #watchObject(w: Watcher, o: Obj): Obj {
    const view = this.#view(w.type, o);
    return (w.table && asTable(view, w.type, w.table, (name) => this.#crd(name))) || view;
  }

  #watches(w: Watcher, o: Obj): boolean {
    return (!w.namespace || meta(o).namespace === w.namespace) && w.match(o);
  }

  #objectsOf(t: ResourceType, namespace: string | undefined): Obj[] {
    const prefix = `${t.group}/${t.plural}|`;
    return [...this.#store.entries()].filter(([k, s]) => k.startsWith(prefix) && (!namespace || meta(s.obj).namespace === namespace)).map(([, s]) => s.obj);
  }

  #emit(type: LogEntry["type"], t: ResourceType, obj: Obj): void {
    const snapshot = clone(obj);
    this.#log.push({ rv: Number(meta(obj).resourceVersion), type, rt: t, obj: snapshot });
    if (t.group === "rbac.authorization.k8s.io" && t.plural === "clusterroles") this.auth.clusterRolesChanged();
    if (this.#log.length > 20_000) {
      const dropped = this.#log.splice(0, 10_000);
      this.#compactedRv = dropped[dropped.length - 1]!.rv + 1;
    }
    for (const fn of this.#observers) {
      // An observer (a test's wait, the workload controllers) that throws must not fail the write that told it.
      try {
        fn({ type, resource: t, object: clone(snapshot) });
      } catch (err) {
        process.stderr.write(`${JSON.stringify({ msg: "k8s stand-in: an observer of stored changes threw", err: err instanceof Error ? err.message : String(err) })}\n`);
      }
    }
    for (const w of this.#watchers) {
      if (w.type.group === t.group && w.type.plural === t.plural && this.#watches(w, snapshot)) w.res.write(JSON.stringify({ type, object: this.#watchObject(w, snapshot) }) + "\n");
    }
  }

  /** The object as served at `t`'s version (objects are stored once per group/resource, whatever version wrote them). */
  #view(t: ResourceType, o: Obj): Obj {
    const c = clone(o);
    if (t.crd) c.apiVersion = apiVersionOf(t);
    return c;
  }

  #key(t: ResourceType, namespace: string, name: string): string {
    return `${t.group}/${t.plural}|${namespace}|${name}`;
  }

  #mustGet(t: ResourceType, namespace: string, name: string): Stored {
    const s = this.#store.get(this.#key(t, namespace, name));
    if (!s) throw notFound(t, name);
    return s;
  }

  #typeOfObj(obj: Obj): ResourceType {
    const t = this.types.find((x) => x.kind === obj.kind && apiVersionOf(x) === obj.apiVersion);
    if (!t) throw new Error(`unknown kind ${String(obj.apiVersion)}/${String(obj.kind)}: not built in, and no established CRD defines it (did the test install the CRDs?)`);
    return t;
  }

  #ctx(manager: string): WriteCtx {
    return { manager, dryRun: false, fieldValidation: "Warn", warnings: [] };
  }

  #crd(name: string): Obj | undefined {
    return this.#store.get(this.#key(CRD_TYPE, "", name))?.obj;
  }

  // ---- admission: what every write goes through before it is stored ----

  /** Metadata checks, then the type's own: the CRD schema for custom objects, defaults for built-ins, CRD validation for CRDs. */
  #admit(t: ResourceType, obj: Obj, old: Obj | undefined, ctx: WriteCtx, sub: Subresource | undefined): Obj {
    const m = meta(obj);
    const name = String(m.name ?? "");
    const causes = [...metadataCauses(m, { label: t === NAMESPACE_TYPE, pathSegment: t.pathSegmentNames === true }), ...(old ? newFinalizersWhileDeleting(old, obj) : [])];
    if (causes.length) throw invalid(kindName(t), name, causes);
    if (t.crd) {
      const crd = this.#crd(t.crd);
      if (!crd) throw notFound(t, name);
      const r = admitObject(crd, t.version, obj, { old, fieldValidation: ctx.fieldValidation, ...(sub ? { subresource: sub } : {}) });
      if (r.rejection) {
        throw new HttpError(r.rejection.status, r.rejection.reason, r.rejection.message, r.rejection.causes, { name, group: t.group, kind: t.kind });
      }
      ctx.warnings.push(...r.warnings);
      return r.obj;
    }
    const out = clone(obj);
    applyBuiltinDefaults(t, out);
    const invalidFields = builtinCauses(t, out, old);
    if (invalidFields.length) throw invalid(kindName(t), name, invalidFields);
    if (t === CRD_TYPE && sub !== "status") {
      defaultCrd(out);
      const r = validateCrd(out, { fieldValidation: ctx.fieldValidation, ...(old ? { old } : {}) });
      if (r.rejection) throw new HttpError(r.rejection.status, r.rejection.reason, r.rejection.message, r.rejection.causes, { name, group: t.group, kind: t.kind });
      ctx.warnings.push(...r.warnings);
      // A built-in type's decoder drops the unknown fields it warned about.
      for (const w of r.warnings) {
        const m = /^unknown field "(.+)"$/.exec(w);
        if (m) deleteAt(out, fieldPath(m[1]!));
      }
    }
    return out;
  }

  // ---- writes ----

  #create(t: ResourceType, namespace: string, input: Obj, ctx: WriteCtx, operation: "Apply" | "Update" = "Update", owned?: Set<string>): Obj {
    if (namespace && !this.#store.has(this.#key(NAMESPACE_TYPE, "", namespace))) throw new HttpError(404, "NotFound", `namespaces "${namespace}" not found`, [], { name: namespace, kind: "namespaces" });
    const m = { ...meta(input) };
    // As names.SimpleNameGenerator: the base cut to 58 characters, then 5 of rand.String's alphabet (no vowels, no look-alikes).
    if (!m.name && typeof m.generateName === "string" && m.generateName) m.name = m.generateName.slice(0, 58) + [...randomBytes(5)].map((b) => "bcdfghjklmnpqrstvwxz2456789"[b % 27]).join("");
    if (namespace && m.namespace && m.namespace !== namespace) throw new HttpError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    const obj: Obj = { ...clone(input), apiVersion: apiVersionOf(t), kind: t.kind };
    // The status subresource's create strategy drops status; a CRD's status is the server's to fill.
    if (t.status && t !== NAMESPACE_TYPE) delete obj.status;
    for (const k of ["managedFields", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "uid", "creationTimestamp", "selfLink"]) delete m[k];
    obj.metadata = { ...m, ...(namespace ? { namespace } : {}), uid: randomUUID(), creationTimestamp: now(), generation: 1 };
    if (!namespace) delete meta(obj).namespace;
    if (t === CRD_TYPE) obj.status = initialCrdStatus(obj);
    const admitted = this.#admit(t, obj, undefined, ctx, undefined);
    const name = String(meta(admitted).name);
    const key = this.#key(t, namespace, name);
    if (this.#store.has(key)) throw new HttpError(409, "AlreadyExists", `${resourceName(t)} "${name}" already exists`, [], { name, group: t.group, kind: t.plural });
    const inScope = scopeOf(t, undefined);
    const paths = operation === "Apply" && owned ? owned : new Set([...leaves(admitted, [], new Set(), listKeysOf(t))].filter(inScope));
    const stored: Stored = { obj: admitted, managers: new Map() };
    stored.managers.set(managerKey(ctx.manager, operation), { manager: ctx.manager, operation, paths, time: now() });
    if (ctx.dryRun) {
      this.#renderManaged(stored, t);
      return clone(admitted);
    }
    meta(admitted).resourceVersion = String(++this.#rv);
    this.#renderManaged(stored, t);
    this.#store.set(key, stored);
    this.#emit("ADDED", t, admitted);
    const created = clone(admitted);
    this.#afterWrite(t, stored);
    return created;
  }

  /** Writes `next` over `s.obj` (through `sub`, if a subresource), tracking which fields the manager changed. */
  #update(t: ResourceType, s: Stored, next: Obj, ctx: WriteCtx, sub: Subresource | undefined): Obj {
    const prev = s.obj;
    const merged: Obj = { ...clone(next), apiVersion: prev.apiVersion, kind: prev.kind };
    merged.metadata = { ...meta(next), ...pickSystem(meta(prev)) };
    // Set by DELETE only: a write can neither set nor clear them.
    for (const k of ["deletionTimestamp", "deletionGracePeriodSeconds"]) if (meta(prev)[k] === undefined) delete meta(merged)[k];
    const cleanNext = this.#admit(t, merged, prev, ctx, sub);
    const inScope = scopeOf(t, sub);
    const changed = [...changedLeaves(prev, cleanNext, listKeysOf(t))].filter(inScope);
    if (changed.length === 0 && deepEqual(stripSystem(prev), stripSystem(cleanNext))) return clone(prev);
    const managers = ctx.dryRun ? cloneManagers(s.managers) : s.managers;
    const mine = managerKey(ctx.manager, "Update", sub);
    for (const k of changed) {
      for (const [key, e] of managers) {
        if (key === mine) continue;
        for (const p of [...e.paths]) if (overlaps(p, k)) e.paths.delete(p);
      }
      if (getAt(cleanNext, keyPath(k)) !== undefined) {
        const entry = managers.get(mine) ?? { manager: ctx.manager, operation: "Update" as const, ...(sub ? { subresource: sub } : {}), paths: new Set<string>(), time: now() };
        entry.paths.add(k);
        entry.time = now();
        managers.set(mine, entry);
      }
    }
    if (ctx.dryRun) return clone(cleanNext);
    return this.#commit(t, s, cleanNext);
  }

  /** Server-side apply of `patch` by the context's manager, to the object or its status. */
  #apply(t: ResourceType, s: Stored, patch: Obj, ctx: WriteCtx, force: boolean, sub: Subresource | undefined): Obj {
    const inScope = scopeOf(t, sub);
    const manager = ctx.manager;
    const body: Obj = clone(patch);
    if (sub !== "status" && t.status) delete body.status;
    if (sub === "status") {
      for (const k of Object.keys(body)) if (!["apiVersion", "kind", "metadata", "status"].includes(k)) delete body[k];
      body.metadata = { name: meta(body).name };
    }
    const applied = new Set([...leaves(body, [], new Set(), listKeysOf(t))].filter(inScope));
    const mine = managerKey(manager, "Apply", sub);
    const next = clone(s.obj);
    const before = s.managers.get(mine)?.paths ?? new Set<string>();
    for (const p of before) {
      if (applied.has(p) || !inScope(p)) continue;
      const ownedByOther = [...s.managers].some(([key, e]) => key !== mine && [...e.paths].some((q) => overlaps(q, p)));
      if (!ownedByOther) deleteAt(next, keyPath(p));
    }
    const bodyNoSys = clone(body);
    bodyNoSys.metadata = Object.fromEntries(Object.entries(meta(body)).filter(([k]) => ["labels", "annotations", "ownerReferences", "finalizers"].includes(k)));
    delete bodyNoSys.apiVersion;
    delete bodyNoSys.kind;
    mergeApply(next, bodyNoSys, listKeysOf(t));
    const admitted = this.#admit(t, next, s.obj, ctx, sub);
    // A field conflicts when another manager owns it and this apply would change its value (defaults included,
    // so applying a container without its defaulted fields does not count as a change).
    const changes = (a: string): boolean => !deepEqual(getAt(s.obj, keyPath(a)), getAt(admitted, keyPath(a)));
    const conflicts = new Map<string, string[]>();
    for (const [key, e] of s.managers) {
      if (key === mine) continue;
      for (const p of e.paths) {
        for (const a of applied) {
          if (overlaps(p, a) && changes(a)) {
            const field = `.${displayPath(keyPath(a))}`;
            const who = e.operation === "Apply" ? `conflict with "${e.manager}"` : `conflict with "${e.manager}" using ${apiVersionOf(t)}`;
            conflicts.set(field, [...(conflicts.get(field) ?? []), who]);
          }
        }
      }
    }
    if (conflicts.size && !force) {
      const causes = [...conflicts].flatMap(([field, whos]) => [...new Set(whos)].map((message) => ({ field, reason: "FieldManagerConflict", message })));
      const lines = causes.map((c) => `${c.message}: ${c.field}`);
      const head = `Apply failed with ${causes.length} conflict${causes.length > 1 ? "s" : ""}: `;
      throw new HttpError(409, "Conflict", head + lines.join("\n"), causes);
    }
    if (ctx.dryRun) return clone(admitted);
    // Fields applied with a value another manager set too are shared; those whose value changed move to this manager.
    for (const [key, e] of s.managers) {
      if (key === mine) continue;
      for (const p of [...e.paths]) if ([...applied].some((a) => overlaps(p, a) && changes(a))) e.paths.delete(p);
    }
    s.managers.set(mine, { manager, operation: "Apply", ...(sub ? { subresource: sub } : {}), paths: applied, time: now() });
    return this.#commit(t, s, admitted);
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
    // The write that removes the last finalizer of an object being deleted deletes it (a pod in its grace
    // period has none to remove: its status writes keep it, as the store's shouldDeleteDuringUpdate says).
    if (m.deletionTimestamp !== undefined && finalizersOf(next).length === 0 && finalizersOf(prev).length > 0) {
      const gone = this.#remove(t, s);
      return gone;
    }
    this.#emit("MODIFIED", t, next);
    const out = clone(next);
    this.#afterWrite(t, s);
    return out;
  }

  #renderManaged(s: Stored, t: ResourceType): void {
    meta(s.obj).managedFields = renderManagedFields(s.managers.values(), apiVersionOf(t));
  }

  /** What the "controllers" of the stand-in do after a write: a CRD's names are accepted and its types served. */
  #afterWrite(t: ResourceType, s: Stored): void {
    if (t === CRD_TYPE && meta(s.obj).deletionTimestamp === undefined) this.#establish(s);
  }

  /**
   * The CRD controllers' job, done at once: NamesAccepted (unless another CRD
   * of the group claims a name), Established, and the types served.
   */
  #establish(s: Stored): void {
    const crd = s.obj;
    const spec = crd.spec as Obj;
    const names = spec.names as Obj;
    const name = String(meta(crd).name);
    const taken = (o: Obj): string[] => {
      const n = ((o.spec as Obj).names ?? {}) as Obj;
      return [n.plural, n.singular, n.kind, n.listKind, ...((n.shortNames as string[] | undefined) ?? [])].filter((x): x is string => typeof x === "string" && x !== "");
    };
    const mine = new Set(taken(crd));
    const clash = this.#objectsOf(CRD_TYPE, undefined).find((o) => meta(o).name !== name && (o.spec as Obj).group === spec.group && taken(o).some((n) => mine.has(n)));
    const time = now();
    const conditions = clash
      ? [
          { type: "NamesAccepted", status: "False", lastTransitionTime: time, reason: "NameConflict", message: `a name is already in use by ${String(meta(clash).name)}` },
          { type: "Established", status: "False", lastTransitionTime: time, reason: "NotAccepted", message: "not all names are accepted" },
        ]
      : [
          { type: "NamesAccepted", status: "True", lastTransitionTime: time, reason: "NoConflicts", message: "no conflicts found" },
          { type: "Established", status: "True", lastTransitionTime: time, reason: "InitialNamesAccepted", message: "the initial names have been accepted" },
        ];
    for (const [k, t] of this.#types) if (t.crd === name) this.#types.delete(k);
    if (!clash) for (const t of typesOfCrd(crd)) this.#types.set(typeKey(t), t);
    // As metav1 conditions: the transition time moves only when the status does.
    const before = (((crd.status as Obj | undefined)?.conditions as Obj[] | null | undefined) ?? []).filter(isObj);
    for (const c of conditions) {
      const prev = before.find((b) => b.type === c.type);
      if (prev && prev.status === c.status && typeof prev.lastTransitionTime === "string") c.lastTransitionTime = prev.lastTransitionTime;
    }
    const status = { ...((crd.status as Obj | undefined) ?? {}), conditions, acceptedNames: clash ? { plural: "", kind: "" } : clone(names) };
    if (deepEqual(crd.status, status)) return;
    const next = { ...clone(crd), status };
    meta(next).resourceVersion = String(++this.#rv);
    s.obj = next;
    this.#emit("MODIFIED", CRD_TYPE, next);
  }

  /**
   * DELETE. An object without finalizers goes at once (the answer is a
   * Status); one with finalizers, or deleted with Foreground/Orphan
   * propagation (which add `foregroundDeletion`/`orphan`), is only marked
   * (`deletionTimestamp`, generation + 1) and answered with itself; the
   * garbage collector does the rest.
   */
  #delete(t: ResourceType, s: Stored, policy: string | undefined, dryRun: boolean, gracePeriodSeconds?: number): Obj {
    const m = meta(s.obj);
    // Only pods are deleted gracefully (the pod strategy's CheckGracefulDelete); anything else goes at once.
    const grace = t.group === "" && t.kind === "Pod" ? podDeletionGrace(s.obj, gracePeriodSeconds) : 0;
    const extra = policy === "Foreground" ? "foregroundDeletion" : policy === "Orphan" ? "orphan" : undefined;
    if (policy !== undefined && !["Foreground", "Background", "Orphan"].includes(policy)) {
      throw invalid("DeleteOptions.meta.k8s.io", "", [{ field: "propagationPolicy", reason: "FieldValueNotSupported", message: `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"` }]);
    }
    const fins = finalizersOf(s.obj);
    const success = (): Obj => ({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name: m.name, ...(t.group ? { group: t.group } : {}), kind: t.plural, uid: m.uid } });
    if (fins.length === 0 && !extra && grace === 0) {
      if (dryRun) return success();
      this.#remove(t, s);
      return success();
    }
    const next = clone(s.obj);
    const nm = meta(next);
    if (extra && !fins.includes(extra)) nm.finalizers = [...fins, extra];
    if (nm.deletionTimestamp === undefined) {
      nm.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
      nm.deletionGracePeriodSeconds = grace;
      nm.generation = (nm.generation as number) + 1;
    } else if (grace < Number(nm.deletionGracePeriodSeconds ?? 0)) {
      // A second delete may only shorten the grace period (rest.BeforeDelete).
      nm.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
      nm.deletionGracePeriodSeconds = grace;
    }
    if (deepEqual(next, s.obj)) return this.#view(t, s.obj);
    if (dryRun) return this.#view(t, next);
    nm.resourceVersion = String(++this.#rv);
    s.obj = next;
    this.#emit("MODIFIED", t, next);
    this.#scheduleGc();
    return this.#view(t, next);
  }

  #remove(t: ResourceType, s: Stored): Obj {
    const m = meta(s.obj);
    this.#store.delete(this.#key(t, (m.namespace as string | undefined) ?? "", m.name as string));
    const gone = clone(s.obj);
    meta(gone).resourceVersion = String(++this.#rv);
    this.#emit("DELETED", t, gone);
    if (t === CRD_TYPE) this.#dropCrd(String(m.name));
    if (t === NAMESPACE_TYPE) this.#dropNamespace(String(m.name));
    this.#scheduleGc();
    return gone;
  }

  /** A deleted CRD takes its objects with it and stops being served. */
  #dropCrd(name: string): void {
    const types = [...this.#types.values()].filter((t) => t.crd === name);
    for (const t of types) {
      for (const o of this.#objectsOf(t, undefined)) {
        const s = this.#store.get(this.#key(t, (meta(o).namespace as string | undefined) ?? "", meta(o).name as string));
        if (s) this.#remove(t, s);
      }
      this.#types.delete(typeKey(t));
      // Watches of a resource that is no longer served end, as on the real server.
      for (const w of [...this.#watchers]) {
        if (w.type.group === t.group && w.type.plural === t.plural) {
          w.res.end();
          this.#watchers.delete(w);
        }
      }
    }
    // Names it held are free again: CRDs that clashed with it may be accepted now.
    for (const o of this.#objectsOf(CRD_TYPE, undefined)) {
      const s = this.#store.get(this.#key(CRD_TYPE, "", String(meta(o).name)));
      if (s) this.#establish(s);
    }
  }

  /** The namespace controller: a deleted namespace's objects go with it. */
  #dropNamespace(name: string): void {
    for (const [key, s] of [...this.#store]) {
      if (meta(s.obj).namespace !== name) continue;
      const t = this.#typeOfStored(key);
      if (t) this.#remove(t, s);
    }
  }

  #typeOfStored(key: string): ResourceType | undefined {
    const prefix = key.split("|")[0]!;
    return this.types.find((t) => `${t.group}/${t.plural}` === prefix);
  }

  #scheduleGc(): void {
    if (this.#gcScheduled) return;
    this.#gcScheduled = true;
    setImmediate(() => {
      this.#gcScheduled = false;
      this.#collectGarbage();
    });
  }

  /**
   * The garbage collector. Background: a dependent goes once none of its
   * owners exist. Foreground: an owner marked with `foregroundDeletion` has
   * its dependents deleted and goes when none is left. Orphan: the owner's
   * references are removed from its dependents, then the owner goes.
   */
  #collectGarbage(): void {
    const byUid = new Map<string, { t: ResourceType; s: Stored }>();
    for (const [key, s] of this.#store) {
      const t = this.#typeOfStored(key);
      if (t) byUid.set(meta(s.obj).uid as string, { t, s });
    }
    const dependents = new Map<string, { t: ResourceType; s: Stored }[]>();
    for (const d of byUid.values()) {
      for (const r of (meta(d.s.obj).ownerReferences as { uid: string }[] | undefined) ?? []) dependents.set(r.uid, [...(dependents.get(r.uid) ?? []), d]);
    }
    const ctx = this.#ctx("generic-garbage-collector");
    for (const { t, s } of byUid.values()) {
      const m = meta(s.obj);
      const refs = (m.ownerReferences as { uid: string }[] | undefined) ?? [];
      const live = this.#store.get(this.#key(t, (m.namespace as string | undefined) ?? "", m.name as string)) === s;
      if (!live) continue;
      if (refs.length && m.deletionTimestamp === undefined) {
        const owners = refs.map((r) => byUid.get(r.uid));
        const foreground = owners.some((o) => o && finalizersOf(o.s.obj).includes("foregroundDeletion") && meta(o.s.obj).deletionTimestamp !== undefined);
        if (owners.every((o) => o === undefined) || foreground) this.#delete(t, s, undefined, false);
      }
    }
    for (const { t, s } of byUid.values()) {
      const m = meta(s.obj);
      if (m.deletionTimestamp === undefined) continue;
      const uid = m.uid as string;
      const fins = finalizersOf(s.obj);
      const deps = (dependents.get(uid) ?? []).filter((d) => this.#store.get(this.#key(d.t, (meta(d.s.obj).namespace as string | undefined) ?? "", meta(d.s.obj).name as string)) === d.s);
      if (fins.includes("orphan")) {
        for (const d of deps) {
          const next = clone(d.s.obj);
          const left = ((meta(next).ownerReferences as { uid: string }[]) ?? []).filter((r) => r.uid !== uid);
          // An empty list is no list in the Go types (omitempty).
          if (left.length) meta(next).ownerReferences = left;
          else delete meta(next).ownerReferences;
          this.#update(d.t, d.s, next, ctx, undefined);
        }
        this.#dropFinalizer(t, s, "orphan", ctx);
      } else if (fins.includes("foregroundDeletion") && deps.length === 0) {
        this.#dropFinalizer(t, s, "foregroundDeletion", ctx);
      }
    }
  }

  #dropFinalizer(t: ResourceType, s: Stored, finalizer: string, ctx: WriteCtx): void {
    const next = clone(s.obj);
    meta(next).finalizers = finalizersOf(next).filter((f) => f !== finalizer);
    if (finalizersOf(next).length === 0) delete meta(next).finalizers;
    this.#update(t, s, next, ctx, undefined);
  }

  #scaleOf(t: ResourceType, obj: Obj): Obj {
    const sc = t.scale!;
    const m = meta(obj);
    let selector = sc.labelSelectorPath ? (getAt(obj, sc.labelSelectorPath.split(".")) as string | undefined) : undefined;
    if (!t.crd) {
      const ml = getAt(obj, ["spec", "selector", "matchLabels"]) as Record<string, string> | undefined;
      selector = ml ? Object.keys(ml).sort().map((k) => `${k}=${ml[k]}`).join(",") : undefined;
    }
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
      spec: { replicas: getAt(obj, sc.specReplicasPath.split(".")) ?? 0 },
      status: { replicas: getAt(obj, sc.statusReplicasPath.split(".")) ?? 0, ...(selector ? { selector } : {}) },
    };
  }

  #setReplicas(t: ResourceType, s: Stored, replicas: unknown, ctx: WriteCtx): Obj {
    const next = clone(s.obj);
    setAt(next, t.scale!.specReplicasPath.split("."), replicas ?? 0);
    return this.#update(t, s, next, ctx, "scale");
  }
}

export interface FakeKubeOptions {
  /** Resource types to serve besides the built-in ones (for tests of types the stand-in does not know). */
  extraTypes?: ResourceType[];
  /**
   * Create the project's CRDs (`crds/*.yaml`) over HTTP, through the same
   * validation as any CRD, and wait until they are Established. Needed by
   * every test that uses TaskWorkers or TaskRuns. Default false.
   */
  crds?: boolean;
  /**
   * Run the workload controllers (`workloads/index.ts` says what is
   * modelled): Deployments get ReplicaSets, ReplicaSets get Pods, pods are
   * bound to a node and given a life (Ready at once, or through
   * `WorkloadOptions.kubelet`), deleted pods stay Terminating for their grace
   * period. Default off: a Deployment is only stored, and tests set its
   * status by hand ({@link FakeKube.patchStatus}).
   */
  workloads?: boolean | WorkloadOptions;
}

/** Starts a fake API server on a free port (with the project's CRDs installed if asked). */
export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const k = new FakeKube(opts.extraTypes);
  await k.start();
  try {
    if (opts.crds) await installCrds(k);
    if (opts.workloads) k.startWorkloads(opts.workloads === true ? {} : opts.workloads);
  } catch (err) {
    await k.close();
    throw err;
  }
  return k;
}
