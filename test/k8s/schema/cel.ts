/**
 * CEL for `x-kubernetes-validations` (apiextensions-apiserver `schema/cel`):
 * the rules of a schema node are type-checked with `self` (and `oldSelf`)
 * typed from that node's schema, given a static cost estimate, and run
 * against objects. The CEL implementation is @marcbachmann/cel-js (standard
 * macros, the strings extension, timestamps and durations, optional types),
 * with Kubernetes' list library added here. Simplified against Kubernetes:
 * its url, quantity, ip, cidr, regex-find and format libraries are missing,
 * so a rule using them fails to compile here; `format: date-time` strings stay strings instead of
 * timestamps; free-form and embedded objects are `dyn`; a `null` on a
 * nullable field is seen as absent.
 */
import { Environment, type ASTNode } from "@marcbachmann/cel-js";
import { isObj } from "../fields.js";
import { additional, embedded, intOrString, items, preserves, props, type Schema, typeOf, type ValidationRule } from "./schema.js";

/** Property names CEL cannot spell as identifiers are escaped as Kubernetes does (`__dash__`, `__dot__`, ...). */
const RESERVED = new Set(["true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"]);
export function escapeName(name: string): string | undefined {
  if (RESERVED.has(name)) return `__${name}__`;
  if (!/^[a-zA-Z_.\-/][a-zA-Z0-9_.\-/]*$/.test(name)) return undefined;
  return name.replace(/__/g, "__underscores__").replace(/\./g, "__dot__").replace(/-/g, "__dash__").replace(/\//g, "__slash__");
}

/** Deep equality of CEL values; typed objects are cel-js Maps that fill their fields when iterated. */
export function celEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === "bigint" || typeof b === "bigint" || typeof a === "number" || typeof b === "number") return typeof a === typeof b && a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => celEqual(x, b[i]));
  }
  const entries = (v: unknown): Map<unknown, unknown> | undefined => {
    // Spread, not entries(): cel-js typed objects load their fields in their own iterator.
    if (v instanceof Map) return new Map([...(v as Iterable<[unknown, unknown]>)].filter(([, x]) => x !== undefined));
    if (isObj(v)) return new Map(Object.entries(v).filter(([, x]) => x !== undefined));
    return undefined;
  };
  const ma = entries(a);
  const mb = entries(b);
  if (!ma || !mb || ma.size !== mb.size) return false;
  for (const [k, v] of ma) if (!mb.has(k) || !celEqual(v, mb.get(k))) return false;
  return true;
}

/** Kubernetes' CEL list library (k8s.io/apiserver/pkg/cel/library/lists.go) for lists of scalars. */
function registerListLibrary(env: Environment): void {
  const less = (a: unknown, b: unknown): boolean => (a as number) < (b as number);
  const pick = (want: "min" | "max") => (l: Iterable<unknown>): unknown => {
    const a = [...l];
    if (!a.length) throw new Error(`${want} called on empty list`);
    return a.reduce((m, x) => (want === "min" ? (less(x, m) ? x : m) : less(m, x) ? x : m));
  };
  for (const t of ["int", "double", "string"]) {
    env.registerFunction(`list<${t}>.isSorted(): bool`, (l: Iterable<unknown>) => [...l].every((x, i, a) => i === 0 || !less(x, a[i - 1])));
    env.registerFunction(`list<${t}>.min(): ${t}`, pick("min"));
    env.registerFunction(`list<${t}>.max(): ${t}`, pick("max"));
  }
  env.registerFunction("list<int>.sum(): int", (l: Iterable<bigint>) => [...l].reduce((s, x) => s + x, 0n));
  env.registerFunction("list<double>.sum(): double", (l: Iterable<number>) => [...l].reduce((s, x) => s + x, 0));
  for (const t of ["int", "double", "string", "bool"]) {
    env.registerFunction(`list<${t}>.indexOf(${t}): int`, (l: Iterable<unknown>, v: unknown) => BigInt([...l].indexOf(v)));
    env.registerFunction(`list<${t}>.lastIndexOf(${t}): int`, (l: Iterable<unknown>, v: unknown) => BigInt([...l].lastIndexOf(v)));
  }
}

/** The CEL environment of one schema node: its object types, `self` and `oldSelf`. */
function buildEnv(s: Schema): Environment {
  const env = new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false, enableOptionalTypes: true });
  registerListLibrary(env);
  let n = 0;
  const declare = (x: Schema): string => {
    if (intOrString(x)) return "dyn";
    switch (typeOf(x)) {
      case "string":
        return "string";
      case "integer":
        return "int";
      case "number":
        return "double";
      case "boolean":
        return "bool";
      case "array": {
        const is = items(x);
        return is ? `list<${declare(is)}>` : "list<dyn>";
      }
      case "object": {
        const ap = additional(x);
        if (ap) return `map<string, ${declare(ap)}>`;
        const ps = props(x);
        // Free-form and embedded objects: Kubernetes types their known fields; dyn is the simplification here.
        if (embedded(x) || preserves(x) || Object.keys(ps).length === 0) return "dyn";
        const fields: Record<string, string> = {};
        for (const [k, sub] of Object.entries(ps)) {
          const name = escapeName(k);
          if (name) fields[name] = declare(sub);
        }
        const name = `Object${n++}`;
        env.registerType({ name, schema: fields });
        env.registerOperator(`${name} == ${name}`, celEqual);
        return name;
      }
      default:
        return "dyn";
    }
  };
  const selfType = declare(s);
  env.registerVariable("self", selfType);
  env.registerVariable("oldSelf", selfType);
  return env;
}

const envs = new WeakMap<Schema, Environment>();
function envFor(s: Schema): Environment {
  let env = envs.get(s);
  if (!env) envs.set(s, (env = buildEnv(s)));
  return env;
}

/** A JSON value as CEL sees it under schema `s`: integers as int (bigint), object keys escaped, nulls left out. */
export function toCel(v: unknown, s: Schema | undefined): unknown {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "number") {
    if (s && typeOf(s) === "number") return v;
    return Number.isInteger(v) ? BigInt(v) : v;
  }
  if (Array.isArray(v)) {
    const is = items(s);
    return v.map((x) => toCel(x, is));
  }
  if (isObj(v)) {
    const out: Record<string, unknown> = {};
    const typed = s && !preserves(s) && !embedded(s) && !additional(s) && Object.keys(props(s)).length > 0;
    for (const [k, x] of Object.entries(v)) {
      const sub = s ? (props(s)[k] ?? additional(s)) : undefined;
      const name = typed ? escapeName(k) : k;
      if (name === undefined) continue;
      const c = toCel(x, sub);
      if (c !== undefined) out[name] = c;
    }
    return out;
  }
  return v;
}

type Program = ((ctx: Record<string, unknown>) => unknown) & { ast: ASTNode; check(): { valid: boolean; type?: string; error?: Error } };

export interface CompiledRule {
  rule: ValidationRule;
  /** Set when the rule (or its messageExpression) does not compile; `detail` is the text kube-apiserver gives. */
  error?: { on: "rule" | "messageExpression"; detail: string };
  usesOldSelf: boolean;
  program?: Program;
  message?: Program;
  /** Estimated worst-case cost of one evaluation (see `estimateCost`). */
  cost: number;
  messageCost: number;
}

/** Go-like `ERROR: <input>:line:col: msg` for a cel-js parse or type error. */
function describeError(err: unknown, source: string): string {
  const e = err as { message?: string; range?: { start: number } };
  const first = (e.message ?? String(err)).split("\n")[0]!;
  const at = e.range?.start ?? 0;
  const before = source.slice(0, at).split("\n");
  return `ERROR: <input>:${before.length}:${before[before.length - 1]!.length + 1}: ${first}\n | ${source}\n | ${".".repeat(before[before.length - 1]!.length)}^`;
}

function parseIn(env: Environment, source: string): { program?: Program; error?: string; type?: string } {
  let program: Program;
  try {
    program = env.parse(source) as Program;
  } catch (err) {
    return { error: describeError(err, source) };
  }
  const checked = program.check();
  if (!checked.valid) return { error: describeError(checked.error, source) };
  return { program, type: checked.type };
}

const compiled = new WeakMap<Schema, CompiledRule[]>();

/** Compiles the rules of schema node `s` (cached per node). */
export function compileRules(s: Schema): CompiledRule[] {
  const hit = compiled.get(s);
  if (hit) return hit;
  const env = envFor(s);
  const out = (Array.isArray(s["x-kubernetes-validations"]) ? (s["x-kubernetes-validations"] as ValidationRule[]) : []).map((rule): CompiledRule => {
    const r: CompiledRule = { rule, usesOldSelf: false, cost: 0, messageCost: 0 };
    const p = parseIn(env, rule.rule);
    if (p.error) r.error = { on: "rule", detail: `compilation failed: ${p.error}` };
    else if (p.type !== "bool" && p.type !== "dyn") r.error = { on: "rule", detail: "cel expression must evaluate to a bool" };
    else {
      r.program = p.program;
      r.usesOldSelf = mentions(p.program!.ast, "oldSelf");
      r.cost = estimateCost(p.program!.ast, s);
    }
    if (!r.error && rule.messageExpression && rule.messageExpression.trim()) {
      const m = parseIn(env, rule.messageExpression);
      if (m.error) r.error = { on: "messageExpression", detail: `messageExpression compilation failed: ${m.error}` };
      else if (m.type !== "string") r.error = { on: "messageExpression", detail: "messageExpression must evaluate to a string" };
      else if (mentions(m.program!.ast, "oldSelf")) r.error = { on: "messageExpression", detail: "messageExpression may not use oldSelf" };
      else {
        r.message = m.program;
        r.messageCost = estimateCost(m.program!.ast, s);
      }
    }
    return r;
  });
  compiled.set(s, out);
  return out;
}

function children(node: ASTNode): ASTNode[] {
  const out: ASTNode[] = [];
  const visit = (a: unknown): void => {
    if (Array.isArray(a)) a.forEach(visit);
    else if (a && typeof a === "object" && "op" in a) out.push(a as ASTNode);
  };
  visit(node.args);
  return out;
}

function mentions(node: ASTNode, id: string): boolean {
  if (node.op === "id" && node.args === id) return true;
  return children(node).some((c) => mentions(c, id));
}

/** Runs one compiled rule; `true` passes. Throws the evaluation error. */
export function evaluate(program: Program, self: unknown, oldSelf: unknown, s: Schema): unknown {
  const ctx: Record<string, unknown> = { self: toCel(self, s) };
  if (oldSelf !== undefined) ctx.oldSelf = toCel(oldSelf, s);
  return program(ctx);
}

// ---- Static cost estimate ------------------------------------------------------------------------
//
// Kubernetes runs cel-go's cost estimator over the checked AST, with sizes
// taken from the schema: maxItems/maxProperties/maxLength, or, when a
// bound is missing, the most a 3 MiB request could hold. This estimate keeps
// that shape (comprehensions multiply by the size of what they range over,
// string work costs a tenth of the length) with simplified unit costs; it
// agrees with the real server on what is obviously too expensive (e.g.
// nested all() over an unbounded list) and on ordinary rules being cheap.

/** kube-apiserver's largest request body (3 MiB), the bound for lists, maps and strings without one. */
const MAX_REQUEST_BYTES = 3 * 1024 * 1024;

/** Smallest JSON encoding of a value of schema `s`, for bounding an unbounded list. */
function minSize(s: Schema | undefined): number {
  switch (s ? typeOf(s) : "") {
    case "string":
      return 2;
    case "boolean":
      return 4;
    case "object":
    case "array":
      return 2;
    default:
      return 1;
  }
}

export function maxItemsOf(s: Schema | undefined): number {
  if (!s) return 1;
  if (typeOf(s) === "array") return typeof s.maxItems === "number" ? s.maxItems : Math.floor((MAX_REQUEST_BYTES - 2) / (minSize(items(s)) + 1));
  if (typeOf(s) === "object" && additional(s)) return typeof s.maxProperties === "number" ? s.maxProperties : Math.floor((MAX_REQUEST_BYTES - 2) / (minSize(additional(s)) + 4));
  return 1;
}

function maxLengthOf(s: Schema | undefined): number {
  if (s && typeof s.maxLength === "number") return s.maxLength;
  return MAX_REQUEST_BYTES - 2;
}

interface Est {
  cost: number;
  schema?: Schema;
  /** Upper bound on a string's length, when the expression is a string. */
  len?: number;
}

function estimateCost(ast: ASTNode, self: Schema): number {
  return est(ast, new Map([["self", self], ["oldSelf", self]])).cost;
}

function est(node: ASTNode, scope: Map<string, Schema | undefined>): Est {
  const a = node.args as unknown;
  switch (node.op) {
    case "value":
      return { cost: 0, len: typeof a === "string" ? a.length : undefined };
    case "id": {
      const s = scope.get(a as string);
      return { cost: 1, schema: s, len: s && typeOf(s) === "string" ? maxLengthOf(s) : undefined };
    }
    case ".":
    case ".?": {
      const [obj, field] = a as [ASTNode, string];
      const o = est(obj, scope);
      const s = o.schema ? (props(o.schema)[field] ?? additional(o.schema)) : undefined;
      return { cost: o.cost + 1, schema: s, len: s && typeOf(s) === "string" ? maxLengthOf(s) : undefined };
    }
    case "[]":
    case "[?]": {
      const [obj, idx] = a as [ASTNode, ASTNode];
      const o = est(obj, scope);
      const s = o.schema ? (items(o.schema) ?? additional(o.schema)) : undefined;
      return { cost: o.cost + est(idx, scope).cost + 1, schema: s, len: s && typeOf(s) === "string" ? maxLengthOf(s) : undefined };
    }
    case "rcall": {
      const [name, recv, args] = a as [string, ASTNode, ASTNode[]];
      const r = est(recv, scope);
      if (["all", "exists", "exists_one", "map", "filter"].includes(name) && args.length >= 2 && args[0]!.op === "id") {
        const n = maxItemsOf(r.schema);
        const inner = new Map(scope);
        const element = r.schema ? (items(r.schema) ?? (additional(r.schema) ? { type: "string" } : undefined)) : undefined;
        inner.set(args[0]!.args as string, element);
        const body = args.slice(1).reduce((sum, b) => sum + est(b, inner).cost, 0);
        return { cost: r.cost + n * (body + 3) + 1 };
      }
      const argCost = args.reduce((sum, x) => sum + est(x, scope).cost, 0);
      // String functions read the string; list functions (isSorted, sum, indexOf, ...) read every item.
      const work = r.len !== undefined ? Math.ceil(r.len * 0.1) : r.schema && typeOf(r.schema) === "array" ? maxItemsOf(r.schema) : 0;
      return { cost: r.cost + argCost + 1 + work };
    }
    case "call": {
      const [, args] = a as [string, ASTNode[]];
      return { cost: args.reduce((sum, x) => sum + est(x, scope).cost, 0) + 1 };
    }
    case "+": {
      const [l, r] = (a as [ASTNode, ASTNode]).map((x) => est(x, scope)) as [Est, Est];
      const len = l.len !== undefined && r.len !== undefined ? l.len + r.len : undefined;
      return { cost: l.cost + r.cost + 1 + (len !== undefined ? Math.ceil(len * 0.1) : 0), len };
    }
    case "==":
    case "!=":
    case "<":
    case "<=":
    case ">":
    case ">=": {
      const [l, r] = (a as [ASTNode, ASTNode]).map((x) => est(x, scope)) as [Est, Est];
      const len = l.len !== undefined && r.len !== undefined ? Math.min(l.len, r.len) : 0;
      return { cost: l.cost + r.cost + 1 + Math.ceil(len * 0.1) };
    }
    default:
      return { cost: children(node).reduce((sum, c) => sum + est(c, scope).cost, 0) + 1 };
  }
}
