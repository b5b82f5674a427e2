/**
 * What clients read before they talk to a resource: `/version`, the legacy
 * discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/GROUP[/VERSION]`),
 * and a minimal OpenAPI v3 (`/openapi/v3`): one document per group version
 * with a PATCH operation per resource that lists the `fieldValidation`
 * parameter and the CRD's schema. That is what kubectl reads to decide that
 * the server validates fields itself (`--validate=strict`), as
 * kubectl's `queryParamVerifierV3` does.
 */
import { createHash } from "node:crypto";
import type { Obj } from "./fields.js";
import { apiVersionOf, type ResourceType } from "./resources.js";

const VERSION = { major: "1", minor: "32", gitVersion: "v1.32.6", platform: "linux/amd64", goVersion: "go1.23.10", compiler: "gc" };

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** The discovery or OpenAPI answer for `pathname`, or undefined when it is not such a path. */
export function discovery(pathname: string, types: ResourceType[], crdOf: (name: string) => Obj | undefined): Obj | undefined {
  const p = pathname.replace(/\/+$/, "") || "/";
  if (p === "/version") return VERSION;
  if (p === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }] };
  if (p === "/apis") return { kind: "APIGroupList", apiVersion: "v1", groups: groupsOf(types) };
  if (p === "/openapi/v3") return openApiRoot(types, crdOf);
  let m = /^\/apis\/([^/]+)$/.exec(p);
  if (m) {
    const g = groupsOf(types).find((x) => x.name === m![1]);
    return g ? { kind: "APIGroup", apiVersion: "v1", ...g } : undefined;
  }
  m = /^\/api\/(v1)$/.exec(p) ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(p);
  if (m) {
    const gv = m[1]!;
    const of = types.filter((t) => apiVersionOf(t) === gv);
    return of.length ? { kind: "APIResourceList", apiVersion: "v1", groupVersion: gv, resources: of.flatMap(resourcesOf) } : undefined;
  }
  m = /^\/openapi\/v3\/(api\/v1|apis\/[^/]+\/[^/]+)$/.exec(p);
  if (m) {
    const gv = m[1]!.replace(/^apis?\//, "");
    const of = types.filter((t) => apiVersionOf(t) === gv);
    return of.length ? openApiDocument(of, crdOf) : undefined;
  }
  return undefined;
}

interface Group {
  name: string;
  versions: { groupVersion: string; version: string }[];
  preferredVersion: { groupVersion: string; version: string };
}

function groupsOf(types: ResourceType[]): Group[] {
  const groups = new Map<string, Group>();
  for (const t of types) {
    if (!t.group) continue;
    const v = { groupVersion: `${t.group}/${t.version}`, version: t.version };
    const g = groups.get(t.group) ?? { name: t.group, versions: [], preferredVersion: v };
    if (!g.versions.some((x) => x.version === t.version)) g.versions.push(v);
    groups.set(t.group, g);
  }
  return [...groups.values()];
}

function resourcesOf(t: ResourceType): Obj[] {
  const base = { namespaced: !t.clusterScoped, kind: t.kind };
  const out: Obj[] = [{ name: t.plural, singularName: t.singular ?? t.kind.toLowerCase(), ...base, verbs: t.createOnly ? ["create"] : VERBS, ...(t.shortNames?.length ? { shortNames: t.shortNames } : {}) }];
  if (t.status) out.push({ name: `${t.plural}/status`, singularName: "", ...base, verbs: ["get", "patch", "update"] });
  if (t.scale) out.push({ name: `${t.plural}/scale`, singularName: "", namespaced: !t.clusterScoped, group: "autoscaling", version: "v1", kind: "Scale", verbs: ["get", "patch", "update"] });
  return out;
}

const gvPath = (t: ResourceType): string => (t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`);

function openApiRoot(types: ResourceType[], crdOf: (name: string) => Obj | undefined): Obj {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of new Set(types.map(gvPath))) {
    const doc = openApiDocument(types.filter((t) => gvPath(t) === gv), crdOf);
    const hash = createHash("sha512").update(JSON.stringify(doc)).digest("hex").slice(0, 128).toUpperCase();
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}

const QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({ name, in: "query", schema: { type: name === "force" ? "boolean" : "string" }, uniqueItems: true }));

function openApiDocument(types: ResourceType[], crdOf: (name: string) => Obj | undefined): Obj {
  const paths: Record<string, Obj> = {};
  const schemas: Record<string, Obj> = {};
  for (const t of types) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const schemaName = `${(t.group || "io.k8s.api.core").split(".").reverse().join(".")}.${t.version}.${t.kind}`;
    const crd = t.crd ? crdOf(t.crd) : undefined;
    const version = ((crd?.spec as Obj | undefined)?.versions as Obj[] | undefined)?.find((v) => v.name === t.version);
    schemas[schemaName] = { type: "object", "x-kubernetes-group-version-kind": [gvk], ...(((version?.schema as Obj | undefined)?.openAPIV3Schema as Obj | undefined) ?? {}) };
    const ref = { $ref: `#/components/schemas/${schemaName}` };
    const op = (verb: string): Obj => ({
      operationId: `${verb}${t.kind}`,
      "x-kubernetes-action": verb,
      "x-kubernetes-group-version-kind": gvk,
      parameters: verb === "get" ? [] : QUERY_PARAMS,
      responses: { "200": { description: "OK", content: { "application/json": { schema: ref } } } },
    });
    const item = `/${gvPath(t)}${t.clusterScoped ? "" : "/namespaces/{namespace}"}/${t.plural}/{name}`;
    paths[item] = { get: op("get"), put: op("put"), patch: op("patch"), delete: op("delete") };
    paths[item.replace(/\/\{name\}$/, "")] = { get: op("list"), post: op("post") };
  }
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: VERSION.gitVersion }, paths, components: { schemas } };
}
