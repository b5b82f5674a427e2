/**
 * `npm run k8s:conformance -- [DIR]`: replays a conformance corpus (requests
 * and what a real kube-apiserver answered) against a fresh stand-in per
 * file, over real HTTP, and prints `ok NAME` or the differences per case.
 * Exits 1 on any mismatch, 2 on bad usage or an unreadable corpus.
 */
import { request as httpRequest } from "node:http";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isObj, type Obj } from "../fields.js";
import { compare, type Actual } from "./compare.js";
import { DEFAULT_CORPUS_DIR, loadCorpus, type CorpusFile, type CorpusRequest } from "./corpus.js";

export { DEFAULT_CORPUS_DIR };
/** How long a watch is read, as when the corpus was recorded. */
const WATCH_MS = 3000;

const USAGE = `Usage: npm run k8s:conformance -- [options] [DIR]

Replays every corpus file in DIR (default: ${DEFAULT_CORPUS_DIR}) against a
fresh in-process Kubernetes stand-in per file: its fixtures, then each case's
setup steps and request, over HTTP. Prints "ok NAME" per matching case, or
"FAIL NAME" and what differs (status, reason, cause fields, modeled body parts,
Warning headers). Exits 1 if any case differs.

Options:
  --case TEXT   only the cases whose name contains TEXT
  -h, --help    this text`;

export interface CaseResult {
  file: string;
  name: string;
  diffs: string[];
}

/** Replays `files`, calling `report` after each case. */
export async function replay(files: CorpusFile[], report: (r: CaseResult) => void, only?: string): Promise<CaseResult[]> {
  // Loaded here, not at the top, so that --help and usage errors answer without loading the schema engine.
  const [{ FakeKube }, { waitEstablished }] = await Promise.all([import("../server.js"), import("../crds.js")]);
  const results: CaseResult[] = [];
  for (const file of files) {
    const cases = file.cases.filter((c) => !only || c.name.includes(only));
    if (!cases.length) continue;
    const fake = new FakeKube();
    await fake.start();
    try {
      let fixtureError: string | undefined;
      for (const [i, f] of file.fixtures.entries()) {
        const r = await send(fake.url, f, []);
        if (r.status >= 300) {
          fixtureError = `fixture ${i} (${f.method} ${f.path}) answered ${r.status}: ${isObj(r.body) ? String(r.body.message) : ""}`;
          break;
        }
        if (f.waitFor === "Established") await waitEstablished(fake, String(((f.body as Obj).metadata as Obj).name));
      }
      for (const c of cases) {
        const diffs = fixtureError ? [fixtureError] : await runCase(fake.url, c.setup, c.request, c.response);
        const r = { file: file.file, name: c.name, diffs };
        results.push(r);
        report(r);
      }
    } finally {
      await fake.close();
    }
  }
  return results;
}

async function runCase(base: string, setup: CorpusRequest[], req: CorpusRequest, expected: Parameters<typeof compare>[0]): Promise<string[]> {
  const answers: Actual[] = [];
  for (const [i, step] of setup.entries()) {
    const r = await send(base, step, answers);
    if (r.status >= 300) return [`setup[${i}] (${step.method} ${step.path}) answered ${r.status}: ${isObj(r.body) ? String(r.body.message) : ""}`];
    answers.push(r);
  }
  const actual = req.watch ? await watch(base, req, answers, expected.events?.length) : await send(base, req, answers);
  return compare(expected, actual);
}

/** Substitutes `{{setup[N].body.a.b}}` placeholders (a whole-string placeholder keeps the value's type). */
function resolvePlaceholders(v: unknown, answers: Actual[]): unknown {
  if (typeof v === "string") {
    const lookup = (n: string, path: string): unknown => {
      let cur: unknown = answers[Number(n)];
      for (const k of path.split(".")) cur = isObj(cur) ? cur[k] : undefined;
      if (cur === undefined) throw new Error(`placeholder {{setup[${n}].${path}}} has no value`);
      return cur;
    };
    const whole = /^\{\{setup\[(\d+)\]\.([^}]+)\}\}$/.exec(v);
    if (whole) return lookup(whole[1]!, whole[2]!);
    return v.replace(/\{\{setup\[(\d+)\]\.([^}]+)\}\}/g, (_, n: string, path: string) => String(lookup(n, path)));
  }
  if (Array.isArray(v)) return v.map((x) => resolvePlaceholders(x, answers));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolvePlaceholders(x, answers)]));
  return v;
}

function target(base: string, req: CorpusRequest, answers: Actual[]): { url: URL; body: string | undefined; headers: Record<string, string> } {
  const url = new URL(String(resolvePlaceholders(req.path, answers)), base);
  for (const [k, v] of Object.entries(req.query)) url.searchParams.set(k, String(resolvePlaceholders(v, answers)));
  const raw = req.body === undefined ? undefined : resolvePlaceholders(req.body, answers);
  const body = raw === undefined ? undefined : typeof raw === "string" ? raw : JSON.stringify(raw);
  return { url, body, headers: { ...req.headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) } };
}

/** Warning header texts: `299 - "text"` → `text`. */
function warningsOf(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "warning") continue;
    const m = /^\d{3} \S+ ("(?:[^"\\]|\\.)*")/.exec(raw[i + 1]!);
    out.push(m ? (JSON.parse(m[1]!) as string) : raw[i + 1]!);
  }
  return out;
}

function send(base: string, req: CorpusRequest, answers: Actual[]): Promise<Actual> {
  const { url, body, headers } = target(base, req, answers);
  return new Promise((resolveP, reject) => {
    const r = httpRequest(url, { method: req.method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: compared as text
        }
        resolveP({ status: res.statusCode ?? 0, body: parsed, warnings: warningsOf(res.rawHeaders) });
      });
      res.on("error", reject);
    });
    r.on("error", reject);
    r.end(body);
  });
}

/** Reads a watch's events for up to {@link WATCH_MS}, or until `expected` events came or the stream ended. */
function watch(base: string, req: CorpusRequest, answers: Actual[], expected: number | undefined): Promise<Actual> {
  const { url, headers } = target(base, req, answers);
  return new Promise((resolveP, reject) => {
    const events: { type: string; object: unknown }[] = [];
    let buf = "";
    let status = 0;
    let warnings: string[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      r.destroy();
      resolveP({ status, body: undefined, warnings, events });
    };
    const timer = setTimeout(finish, WATCH_MS);
    const r = httpRequest(url, { method: "GET", headers }, (res) => {
      status = res.statusCode ?? 0;
      warnings = warningsOf(res.rawHeaders);
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) events.push(JSON.parse(line) as { type: string; object: unknown });
        }
        if (expected !== undefined && events.length >= expected) finish();
      });
      res.on("end", finish);
      res.on("error", finish);
    });
    r.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    r.end();
  });
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs<{ options: { case: { type: "string" }; help: { type: "boolean"; short: "h" } }; allowPositionals: true }>>;
  try {
    args = parseArgs({ options: { case: { type: "string" }, help: { type: "boolean", short: "h" } }, allowPositionals: true });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (args.positionals.length > 1) {
    console.error(`one corpus folder at most, got ${args.positionals.length}\n\n${USAGE}`);
    return 2;
  }
  const dir = resolve(process.cwd(), args.positionals[0] ?? DEFAULT_CORPUS_DIR);
  let files: CorpusFile[];
  try {
    files = await loadCorpus(dir);
  } catch (err) {
    console.error(`cannot read the corpus in ${dir}: ${err instanceof Error ? err.message : String(err)} (pass the corpus folder as the argument)`);
    return 2;
  }
  if (!files.length) {
    console.error(`no corpus files (*.json with "cases") in ${dir}`);
    return 2;
  }
  const results = await replay(files, (r) => {
    if (!r.diffs.length) console.log(`ok ${r.name}`);
    else console.log(`FAIL ${r.name} (${r.file})\n${r.diffs.map((d) => `    ${d}`).join("\n")}`);
  }, args.values.case);
  const failed = results.filter((r) => r.diffs.length);
  console.log(`\n${results.length} cases in ${files.length} files: ${results.length - failed.length} ok, ${failed.length} differ${failed.length ? ` (${failed.map((r) => r.name).join(", ")})` : ""}`);
  return failed.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(2);
    },
  );
}
