/**
 * How an answer of the stand-in is held against the recorded one: the HTTP
 * code, the Status reason, the set of cause fields with their reasons, and
 * for a success the parts of the body the stand-in models (defaults, pruned
 * fields, `.status` kept or dropped, `generation`, finalizers,
 * `deletionTimestamp`, the Scale object, which managers own fields) plus
 * whether a Warning header came. Messages are not compared: the real
 * server's wording is not the contract. `"<volatile>"` matches anything.
 */
import { isObj, type Obj } from "../fields.js";
import type { CorpusResponse } from "./corpus.js";

export const VOLATILE = "<volatile>";

/** What the stand-in answered. */
export interface Actual {
  status: number;
  body: unknown;
  warnings: string[];
  events?: { type: string; object: unknown }[];
}

/** The differences, one line each; empty when the answer matches. */
export function compare(expected: CorpusResponse, actual: Actual): string[] {
  const diffs: string[] = [];
  if (expected.status !== actual.status) diffs.push(`status: expected ${expected.status}, got ${actual.status}${describeStatus(actual.body)}`);
  const body = isObj(actual.body) ? actual.body : {};
  if (expected.reason !== undefined && body.reason !== expected.reason) diffs.push(`reason: expected ${expected.reason}, got ${String(body.reason)}`);
  if (expected.status >= 300 || actual.status >= 300) {
    const want = causeSet(expected.causes ?? []);
    const got = causeSet(((body.details as Obj | undefined)?.causes as { field: string; reason: string }[] | undefined) ?? []);
    const missing = [...want].filter((c) => !got.has(c));
    const extra = [...got].filter((c) => !want.has(c));
    if (missing.length) diffs.push(`causes: missing ${missing.join(", ")}`);
    if (extra.length) diffs.push(`causes: unexpected ${extra.join(", ")}`);
  }
  if (expected.status < 300 && actual.status < 300) {
    const wantWarning = (expected.warnings ?? []).length > 0;
    if (wantWarning !== actual.warnings.length > 0) diffs.push(`warnings: expected ${wantWarning ? JSON.stringify(expected.warnings) : "none"}, got ${actual.warnings.length ? JSON.stringify(actual.warnings) : "none"}`);
    if (expected.events) diffs.push(...compareEvents(expected.events, actual.events ?? []));
    else if (expected.body !== undefined) diffs.push(...diff("body", modeled(expected.body), modeled(actual.body)));
  }
  return diffs;
}

function describeStatus(body: unknown): string {
  return isObj(body) && body.kind === "Status" && body.status === "Failure" ? ` (${String(body.reason)}: ${String(body.message)})` : "";
}

function causeSet(causes: { field: string; reason: string }[]): Set<string> {
  return new Set(causes.map((c) => `${c.field} (${c.reason})`));
}

function compareEvents(want: { type: string; object: unknown }[], got: { type: string; object: unknown }[]): string[] {
  if (want.length !== got.length) return [`events: expected ${want.length} (${want.map((e) => e.type).join(", ")}), got ${got.length} (${got.map((e) => e.type).join(", ")})`];
  return want.flatMap((w, i) => diff(`events[${i}]`, { type: w.type, object: modeled(w.object) }, { type: got[i]!.type, object: modeled(got[i]!.object) }));
}

/**
 * The parts of an answer's body that the stand-in models. The rest (times,
 * uids, the exact managedFields trees, list metadata, message wording) is
 * either run-to-run noise or detail nobody acts on.
 */
export function modeled(body: unknown): unknown {
  if (!isObj(body)) return body;
  const kind = body.kind;
  if (kind === "Status") {
    const details = isObj(body.details) ? body.details : {};
    return { kind, status: body.status, ...(body.status === "Failure" ? { code: body.code, reason: body.reason } : { details: { name: details.name, group: details.group, kind: details.kind } }) };
  }
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(body.items)) {
    return { kind, items: body.items.map((i) => (isObj(i) && isObj(i.metadata) ? i.metadata.name : i)) };
  }
  if (kind === "Scale") {
    const m = isObj(body.metadata) ? body.metadata : {};
    return { kind, apiVersion: body.apiVersion, metadata: { name: m.name, namespace: m.namespace }, spec: body.spec, status: body.status };
  }
  const m = isObj(body.metadata) ? body.metadata : {};
  const out: Obj = {
    apiVersion: body.apiVersion,
    kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      generation: m.generation,
      labels: m.labels,
      finalizers: m.finalizers,
      ownerReferences: m.ownerReferences,
      deletionTimestamp: m.deletionTimestamp === undefined ? undefined : "set",
      deletionGracePeriodSeconds: m.deletionGracePeriodSeconds,
      managers: Array.isArray(m.managedFields)
        ? (m.managedFields as Obj[]).map((e) => `${String(e.manager)}/${String(e.operation)}${e.subresource ? `/${String(e.subresource)}` : ""}`).sort()
        : undefined,
    },
    spec: body.spec,
  };
  if (kind === "CustomResourceDefinition") out.status = { storedVersions: isObj(body.status) ? body.status.storedVersions : undefined };
  else out.status = body.status;
  for (const k of Object.keys(body)) if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(k)) out[k] = body[k];
  return out;
}

/** Lines naming each path where `want` and `got` differ (a `"<volatile>"` in `want` matches anything, absence too). */
export function diff(path: string, want: unknown, got: unknown): string[] {
  if (want === VOLATILE) return [];
  if (isObj(want) && isObj(got)) {
    return [...new Set([...Object.keys(want), ...Object.keys(got)])].sort().flatMap((k) => diff(`${path}.${k}`, want[k], got[k]));
  }
  if (Array.isArray(want) && Array.isArray(got) && want.length === got.length) return want.flatMap((w, i) => diff(`${path}[${i}]`, w, got[i]));
  if (JSON.stringify(want) === JSON.stringify(got)) return [];
  return [`${path}: expected ${show(want)}, got ${show(got)}`];
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
