/**
 * Objects nested as `x-kubernetes-embedded-resource` (apiextensions-apiserver
 * `schema/objectmeta` Validate): each needs an apiVersion and a kind, and its
 * metadata name, when set, must be a DNS subdomain, as a top-level object's.
 */
import { isObj } from "../fields.js";
import type { FieldPath } from "./errors.js";
import { fieldErr, type FieldError } from "./errors.js";
import { additional, embedded, items, props, type Schema } from "./schema.js";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function validateEmbedded(v: unknown, s: Schema, path: FieldPath, out: FieldError[] = []): FieldError[] {
  if (Array.isArray(v)) {
    const is = items(s);
    if (is) v.forEach((x, i) => validateEmbedded(x, is, path.index(i), out));
    return out;
  }
  if (!isObj(v)) return out;
  if (embedded(s)) {
    for (const k of ["apiVersion", "kind"]) {
      const x = v[k];
      if (x === undefined) out.push(fieldErr.required(path.child(k).toString(), "must not be empty"));
      else if (typeof x !== "string") out.push(fieldErr.typeInvalid(path.child(k).toString(), x, "must be a string"));
      else if (!x) out.push(fieldErr.required(path.child(k).toString(), ""));
      else if (k === "kind" && !DNS1035_LABEL.test(x.toLowerCase())) out.push(fieldErr.invalid(path.child(k).toString(), x, "may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"));
    }
    const meta = v.metadata;
    if (isObj(meta) && typeof meta.name === "string" && meta.name && !DNS1123_SUBDOMAIN.test(meta.name)) {
      out.push(fieldErr.invalid(path.child("metadata", "name").toString(), meta.name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
    }
  }
  for (const [k, x] of Object.entries(v)) {
    const ps = props(s);
    if (ps[k]) validateEmbedded(x, ps[k], path.child(k), out);
    else if (additional(s)) validateEmbedded(x, additional(s)!, path.key(k), out);
  }
  return out;
}
