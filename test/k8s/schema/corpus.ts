/**
 * The shared conformance corpus (`../shared/k8s-conformance` beside the
 * repository), read for the schema engine's own tests.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_CORPUS_DIR } from "../conformance/corpus.js";
import type { Obj } from "../fields.js";

/** The corpus folder, as the replay tool finds it. */
export const CORPUS_DIR = DEFAULT_CORPUS_DIR;

export interface CorpusRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface CorpusCase {
  name: string;
  about: string;
  setup?: CorpusRequest[];
  request: CorpusRequest;
  response: {
    status: number;
    reason?: string;
    message?: string;
    causes?: { field: string; reason: string; message: string }[];
    body?: Obj;
    warnings?: string[];
  };
}

export function loadCorpus(file: string): { fixtures: CorpusRequest[]; cases: CorpusCase[] } {
  return JSON.parse(readFileSync(join(CORPUS_DIR, file), "utf8")) as { fixtures: CorpusRequest[]; cases: CorpusCase[] };
}

export function loadJson(file: string): Obj {
  return JSON.parse(readFileSync(join(CORPUS_DIR, file), "utf8")) as Obj;
}
