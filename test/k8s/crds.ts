/**
 * Creating CRDs in the stand-in the way `kubectl apply -f crds/` would: over
 * HTTP, through the same validation as any CRD, then waiting for each to be
 * Established. Tests that use TaskWorkers or TaskRuns get them this way, so a
 * CRD the real server would refuse fails those tests too.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { isObj, type Obj } from "./fields.js";
import type { FakeKube } from "./server.js";

/** The generated CRDs of the project (`crds/*.yaml`). */
export const PROJECT_CRDS_DIR = resolve(fileURLToPath(import.meta.url), "../../../crds");

const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/** Thrown when the stand-in refuses a CRD, with the Status it answered. */
export class CrdRefusedError extends Error {
  constructor(
    readonly crd: string,
    readonly status: Obj,
  ) {
    super(`the API server refused CRD ${crd}: ${String(status.message)} (fix it at its source, operator/src/crds/, then npm run crds)`);
    this.name = "CrdRefusedError";
  }
}

/** Every CustomResourceDefinition in the YAML files of `dir` (default: the project's `crds/`). */
export async function readCrds(dir = PROJECT_CRDS_DIR): Promise<Obj[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const out: Obj[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const v: unknown = doc.toJS();
      if (isObj(v) && v.kind === "CustomResourceDefinition") out.push(v);
    }
  }
  return out;
}

/** POSTs each CRD to `fake` and waits until it is Established. Resolves to the CRDs as stored. */
export async function installCrds(fake: FakeKube, crds?: Obj[]): Promise<Obj[]> {
  const list = crds ?? (await readCrds());
  const out: Obj[] = [];
  for (const crd of list) {
    const name = String((crd.metadata as Obj | undefined)?.name);
    const res = await fetch(`${fake.url}${CRD_PATH}?fieldManager=installCrds`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(crd) });
    const body = (await res.json()) as Obj;
    if (!res.ok) throw new CrdRefusedError(name, body);
    out.push(await waitEstablished(fake, name));
  }
  return out;
}

/** Polls the CRD until its Established condition is True (or says why not). */
export async function waitEstablished(fake: FakeKube, name: string, timeoutMs = 10_000): Promise<Obj> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${fake.url}${CRD_PATH}/${encodeURIComponent(name)}`);
    const crd = (await res.json()) as Obj;
    const conditions = ((crd.status as Obj | undefined)?.conditions as Obj[] | null | undefined) ?? [];
    if (conditions.some((c) => c.type === "Established" && c.status === "True")) return crd;
    if (Date.now() > deadline) throw new Error(`CRD ${name} was not Established within ${timeoutMs} ms: ${JSON.stringify(conditions)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
