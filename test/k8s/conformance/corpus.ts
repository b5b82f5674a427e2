/**
 * The shape of a conformance corpus file (see the corpus's README.md): what a
 * real kube-apiserver answered to each request, to replay against the stand-in.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

/**
 * Where the corpus is: `OFFLOAD_K8S_CORPUS`, else the shared one beside the
 * repository (`<repo>/../shared/k8s-conformance`, where a CI clone has it too).
 */
export const DEFAULT_CORPUS_DIR = process.env.OFFLOAD_K8S_CORPUS || resolve(fileURLToPath(import.meta.url), "../../../../../shared/k8s-conformance");

const request = z.object({
  method: z.string(),
  path: z.string(),
  query: z.record(z.string(), z.string()).default({}),
  headers: z.record(z.string(), z.string()).default({}),
  /** A JSON value is sent serialized; a string is sent verbatim. */
  body: z.unknown().optional(),
  watch: z.boolean().optional(),
  waitFor: z.literal("Established").optional(),
});

const cause = z.object({ field: z.string(), reason: z.string(), message: z.string().optional() });

const response = z.object({
  status: z.number().int(),
  reason: z.string().optional(),
  message: z.string().optional(),
  causes: z.array(cause).optional(),
  body: z.unknown().optional(),
  warnings: z.array(z.string()).optional(),
  events: z.array(z.object({ type: z.string(), object: z.unknown() })).optional(),
});

const testCase = z.object({
  name: z.string(),
  about: z.string().optional(),
  setup: z.array(request).default([]),
  request,
  response,
});

const corpusFile = z.object({
  server: z.string(),
  about: z.string().optional(),
  fixtures: z.array(request).default([]),
  cases: z.array(testCase),
});

export type CorpusRequest = z.infer<typeof request>;
export type CorpusResponse = z.infer<typeof response>;
export type CorpusCase = z.infer<typeof testCase>;
export type CorpusFile = z.infer<typeof corpusFile> & { file: string };

/** The corpus files of `dir`: every `*.json` with `cases` (the base objects beside them are skipped). */
export async function loadCorpus(dir: string): Promise<CorpusFile[]> {
  const names = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  const out: CorpusFile[] = [];
  for (const name of names) {
    const raw: unknown = JSON.parse(await readFile(join(dir, name), "utf8"));
    if (typeof raw !== "object" || raw === null || !("cases" in raw)) continue;
    const parsed = corpusFile.safeParse(raw);
    if (!parsed.success) throw new Error(`${name} is not a corpus file: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    out.push({ ...parsed.data, file: name });
  }
  return out;
}
