/**
 * kubectl sends built-in types as protobuf (`application/vnd.kubernetes.protobuf`):
 * `kubectl auth can-i` a SelfSubjectAccessReview, `kubectl create token` a
 * TokenRequest, `kubectl auth whoami` a SelfSubjectReview, `kubectl auth can-i --list` a
 * SelfSubjectRulesReview. This reads those bodies into the JSON shape the handlers take:
 * the `k8s\0` envelope of `runtime.Unknown`
 * (`apimachinery/pkg/runtime/serializer/protobuf`), then the messages by
 * their field numbers in `k8s.io/api/{authorization,authentication}/v1/generated.proto`.
 * Only the fields the stand-in reads are known; others are skipped. Answers
 * stay JSON, which those clients accept too.
 */
import type { Obj } from "../fields.js";
import { HttpError } from "../http.js";

export const PROTOBUF = "application/vnd.kubernetes.protobuf";

type Field = { name: string; type: "string" | "int" | "bool" | Schema; repeated?: boolean };
type Schema = Record<number, Field>;

const OBJECT_META: Schema = { 1: { name: "name", type: "string" }, 2: { name: "generateName", type: "string" }, 3: { name: "namespace", type: "string" } };
const RESOURCE_ATTRIBUTES: Schema = {
  1: { name: "namespace", type: "string" },
  2: { name: "verb", type: "string" },
  3: { name: "group", type: "string" },
  4: { name: "version", type: "string" },
  5: { name: "resource", type: "string" },
  6: { name: "subresource", type: "string" },
  7: { name: "name", type: "string" },
};
const NON_RESOURCE_ATTRIBUTES: Schema = { 1: { name: "path", type: "string" }, 2: { name: "verb", type: "string" } };
const ACCESS_REVIEW_SPEC: Schema = {
  1: { name: "resourceAttributes", type: RESOURCE_ATTRIBUTES },
  2: { name: "nonResourceAttributes", type: NON_RESOURCE_ATTRIBUTES },
  3: { name: "user", type: "string" },
  4: { name: "groups", type: "string", repeated: true },
  6: { name: "uid", type: "string" },
};
const SELF_ACCESS_REVIEW_SPEC: Schema = { 1: { name: "resourceAttributes", type: RESOURCE_ATTRIBUTES }, 2: { name: "nonResourceAttributes", type: NON_RESOURCE_ATTRIBUTES } };
const TOKEN_REVIEW_SPEC: Schema = { 1: { name: "token", type: "string" }, 2: { name: "audiences", type: "string", repeated: true } };
const TOKEN_REQUEST_SPEC: Schema = { 1: { name: "audiences", type: "string", repeated: true }, 4: { name: "expirationSeconds", type: "int" } };

const withMeta = (spec: Schema): Schema => ({ 1: { name: "metadata", type: OBJECT_META }, 2: { name: "spec", type: spec } });

/** The top-level message of each kind this stand-in takes as protobuf. */
const KINDS: Record<string, Schema> = {
  SubjectAccessReview: withMeta(ACCESS_REVIEW_SPEC),
  LocalSubjectAccessReview: withMeta(ACCESS_REVIEW_SPEC),
  SelfSubjectAccessReview: withMeta(SELF_ACCESS_REVIEW_SPEC),
  TokenReview: withMeta(TOKEN_REVIEW_SPEC),
  TokenRequest: withMeta(TOKEN_REQUEST_SPEC),
  SelfSubjectReview: { 1: { name: "metadata", type: OBJECT_META } },
  SelfSubjectRulesReview: withMeta({ 1: { name: "namespace", type: "string" } }),
};
const UNKNOWN: Schema = {
  1: { name: "typeMeta", type: { 1: { name: "apiVersion", type: "string" }, 2: { name: "kind", type: "string" } } },
  2: { name: "raw", type: "string" },
};

class Reader {
  #pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.#pos >= this.buf.length;
  }
  varint(): number {
    let out = 0;
    let mul = 1;
    for (;;) {
      if (this.#pos >= this.buf.length) throw new Error("truncated varint");
      const b = this.buf[this.#pos++]!;
      out += (b & 0x7f) * mul;
      if (b < 0x80) return out;
      mul *= 128;
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    if (this.#pos + n > this.buf.length) throw new Error("truncated field");
    const b = this.buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.#pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.#pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function decode(buf: Buffer, schema: Schema): Obj {
  const r = new Reader(buf);
  const out: Obj = {};
  const raw: Record<string, Buffer> = {};
  while (!r.done) {
    const key = r.varint();
    const [num, wire] = [Math.floor(key / 8), key % 8];
    const f = schema[num];
    if (!f) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    if (f.type === "int" || f.type === "bool") {
      const n = r.varint();
      value = f.type === "bool" ? n !== 0 : n;
    } else if (f.type === "string") {
      const b = r.bytes();
      // `raw` of runtime.Unknown is bytes: kept as such for the second pass.
      if (f.name === "raw") raw.raw = b;
      value = b.toString("utf8");
    } else value = decode(r.bytes(), f.type);
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(value);
    else out[f.name] = value;
  }
  if (raw.raw) out.raw = raw.raw;
  return out;
}

/** The object in a protobuf request body, as JSON would have carried it; 400 when it is not one of the kinds above. */
export function decodeProtobuf(body: Buffer): Obj {
  if (body.length < 4 || body.subarray(0, 4).toString("latin1") !== "k8s\0") throw new HttpError(400, "BadRequest", "the body of the request could not be decoded: provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]");
  try {
    const unknown = decode(body.subarray(4), UNKNOWN);
    const tm = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
    const schema = tm.kind ? KINDS[tm.kind] : undefined;
    if (!schema) throw new HttpError(415, "UnsupportedMediaType", `the stand-in reads protobuf only for ${Object.keys(KINDS).join(", ")}, not ${tm.kind ?? "this body"}: send JSON`);
    return { apiVersion: tm.apiVersion, kind: tm.kind, ...decode((unknown.raw as Buffer | undefined) ?? Buffer.alloc(0), schema) };
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(400, "BadRequest", `the body of the request could not be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
}
