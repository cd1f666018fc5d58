/**
 * Strict parsing of featurelock envelopes, binary and JSON text (docs/envelope-spec.md).
 * Each envelope has exactly one accepted spelling per form; everything else, including
 * anything oversized, is DecryptionError, checked before decoding or allocating.
 */

import { DecryptionError } from "./errors.js";
import { DTYPES_BY_CODE, DTYPES_BY_NAME, SCHEMES_BY_ID, SCHEMES_BY_NAME } from "./schemes.js";

export const MAX_ENVELOPE_BYTES = 256 * 1024 * 1024;
const MAGIC = [0x46, 0x4c, 0x4b]; // "FLK"
const FIXED = 11; // magic 3, version 1, scheme 1, key id 4, dtype 1, ndim 1
const MAX_NDIM = 8;
const B64_FIELDS = ["nonce", "payload", "tag"];
const JSON_FIELDS = ["featurelock", "scheme", "key_id", "dtype", "shape", ...B64_FIELDS];

/**
 * @typedef {object} Envelope
 * @property {number} version
 * @property {string} scheme
 * @property {number} keyId
 * @property {string} dtype
 * @property {number[]} shape
 * @property {Uint8Array} header   the bytes the associated data starts with
 * @property {Uint8Array} nonce
 * @property {Uint8Array} payload
 * @property {Uint8Array} tag
 */

/** Payload bytes of `shape`, or -1 unless 1..8 dims each in 1..2**32-1 and total <= max. */
function payloadSize(shape, itemSize, maxBytes) {
  if (shape.length < 1 || shape.length > MAX_NDIM) return -1;
  let size = itemSize;
  for (const dim of shape) {
    if (!Number.isInteger(dim) || dim < 1 || dim > 0xffffffff) return -1;
    size *= dim;
    if (size > maxBytes) return -1;
  }
  return size;
}

/** The header of an envelope with these fields (big-endian; v3 has a u16 tag length). */
export function encodeHeader(scheme, version, keyId, dtypeCode, shape, payloadLen) {
  const [nonceLen, tagLen] = scheme.sizes(version);
  const lengths = version === 3 ? 7 : 6;
  const out = new Uint8Array(FIXED + 4 * shape.length + lengths);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(3, version);
  view.setUint8(4, scheme.id);
  view.setUint32(5, keyId);
  view.setUint8(9, dtypeCode);
  view.setUint8(10, shape.length);
  shape.forEach((dim, i) => view.setUint32(FIXED + 4 * i, dim));
  let at = FIXED + 4 * shape.length;
  view.setUint8(at, nonceLen);
  view.setUint32(at + 1, payloadLen);
  if (version === 3) view.setUint16(at + 5, tagLen);
  else view.setUint8(at + 5, tagLen);
  return out;
}

/**
 * Parse the binary form. @param {Uint8Array} data @param {number} [maxBytes]
 * @returns {Envelope}
 */
export function parseBinary(data, maxBytes = MAX_ENVELOPE_BYTES) {
  if (!(data instanceof Uint8Array) || data.length > maxBytes || data.length < FIXED) {
    throw new DecryptionError();
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = data[3];
  const scheme = SCHEMES_BY_ID.get(data[4]);
  const dtype = DTYPES_BY_CODE.get(data[9]);
  const ndim = data[10];
  if (data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2]
      || scheme === undefined || !scheme.versions.includes(version)
      || dtype === undefined || !scheme.dtypes.includes(dtype[0])
      || ndim < 1 || ndim > MAX_NDIM) {
    throw new DecryptionError();
  }
  const lengthsAt = FIXED + 4 * ndim;
  const headerLen = lengthsAt + (version === 3 ? 7 : 6);
  if (data.length < headerLen) throw new DecryptionError();
  const shape = [];
  for (let i = 0; i < ndim; i++) shape.push(view.getUint32(FIXED + 4 * i));
  const nonceLen = view.getUint8(lengthsAt);
  const payloadLen = view.getUint32(lengthsAt + 1);
  const tagLen = version === 3 ? view.getUint16(lengthsAt + 5) : view.getUint8(lengthsAt + 5);
  const [nonceSize, tagSize] = scheme.sizes(version);
  const expected = payloadSize(shape, dtype[1], maxBytes);
  if (expected < 0 || nonceLen !== nonceSize || tagLen !== tagSize || payloadLen !== expected
      || data.length !== headerLen + nonceLen + payloadLen + tagLen) {
    throw new DecryptionError();
  }
  const body = headerLen + nonceLen;
  return {
    version, scheme: scheme.name, keyId: view.getUint32(5), dtype: dtype[0], shape,
    header: data.subarray(0, headerLen), nonce: data.subarray(headerLen, body),
    payload: data.subarray(body, body + payloadLen), tag: data.subarray(body + payloadLen),
  };
}

/** Longest canonical JSON text of an envelope of at most maxBytes (as Python's limit). */
function jsonTextLimit(maxBytes) {
  return 4 * (Math.floor(maxBytes / 3) + B64_FIELDS.length) + 256;
}

/** The `size` bytes `value` encodes, or null unless it is their one canonical base64 (length
 * checked before decoding; Buffer skips stray characters, so the re-encoding must match). */
function b64Canonical(value, size) {
  if (typeof value !== "string" || value.length !== 4 * Math.ceil(size / 3)) return null;
  const raw = Buffer.from(value, "base64");
  return raw.length === size && raw.toString("base64") === value ? raw : null;
}

const b64 = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/** The canonical JSON text of a parsed envelope (what Python's Envelope.to_json writes). */
export function toJson(env) {
  return canonicalText(env, b64(env.nonce), b64(env.payload), b64(env.tag));
}

function canonicalText(env, nonce, payload, tag) {
  return `{"featurelock":${env.version},"scheme":"${env.scheme}","key_id":${env.keyId},`
    + `"dtype":"${env.dtype}","shape":[${env.shape.join(",")}],"nonce":"${nonce}",`
    + `"payload":"${payload}","tag":"${tag}"}`;
}

/** Parse the JSON text form. @param {string} text @param {number} [maxBytes] @returns {Envelope} */
export function parseJson(text, maxBytes = MAX_ENVELOPE_BYTES) {
  if (typeof text !== "string" || text.length > jsonTextLimit(maxBytes)) throw new DecryptionError();
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DecryptionError();
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)
      || Object.keys(doc).length !== JSON_FIELDS.length || !JSON_FIELDS.every((k) => Object.hasOwn(doc, k))) {
    throw new DecryptionError();
  }
  const { featurelock: version, key_id: keyId, shape } = doc;
  const scheme = typeof doc.scheme === "string" ? SCHEMES_BY_NAME.get(doc.scheme) : undefined;
  const dtype = typeof doc.dtype === "string" ? DTYPES_BY_NAME.get(doc.dtype) : undefined;
  if (!Number.isInteger(version) || !Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff
      || !Array.isArray(shape) || shape.length > MAX_NDIM || scheme === undefined || dtype === undefined
      || !scheme.versions.includes(version)) {
    throw new DecryptionError();
  }
  const payloadLen = payloadSize(shape, dtype.size, maxBytes);
  if (payloadLen < 0) throw new DecryptionError();
  const header = encodeHeader(scheme, version, keyId, dtype.code, shape, payloadLen);
  const [nonceLen, tagLen] = scheme.sizes(version);
  const sizes = [nonceLen, payloadLen, tagLen];
  if (header.length + nonceLen + payloadLen + tagLen > maxBytes) throw new DecryptionError();
  const parts = B64_FIELDS.map((k, i) => b64Canonical(doc[k], sizes[i]));
  if (parts.includes(null)) throw new DecryptionError();
  const binary = new Uint8Array(header.length + nonceLen + payloadLen + tagLen);
  let at = 0;
  for (const part of [header, ...parts]) {
    binary.set(part, at);
    at += part.length;
  }
  const env = parseBinary(binary, maxBytes);
  // One spelling: whitespace, key order, escapes, floats, duplicates all differ from this
  // (each base64 string is already known to be the canonical encoding of its bytes).
  if (canonicalText(env, doc.nonce, doc.payload, doc.tag) !== text) throw new DecryptionError();
  return env;
}

/**
 * An envelope from its binary form (Uint8Array/Buffer; one starting with "{" is JSON text in
 * ASCII) or its JSON text (string). Anything else is DecryptionError.
 * @param {Uint8Array | string} message @param {number} [maxBytes] @returns {Envelope}
 */
export function parseEnvelope(message, maxBytes = MAX_ENVELOPE_BYTES) {
  if (typeof message === "string") return parseJson(message, maxBytes);
  if (!(message instanceof Uint8Array)) throw new DecryptionError();
  if (message[0] !== 0x7b) return parseBinary(message, maxBytes);
  if (message.length > jsonTextLimit(maxBytes) || message.some((b) => b > 0x7f)) {
    throw new DecryptionError();
  }
  return parseJson(Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString("latin1"), maxBytes);
}
