/**
 * The recipe layer, as in Python: FeatureReader opens an envelope for a context and returns
 * the features; FeatureProtector writes one under the keyset's primary key (aes-256-gcm, or
 * sealed to a consumer's public key). Every failure to read is the one DecryptionError.
 */

import { contextAssociatedData } from "./context.js";
import { openSealed, seal } from "./ciphers.js";
import { DecryptionError, KeysetError } from "./errors.js";
import { encodeHeader, MAX_ENVELOPE_BYTES, parseEnvelope, toJson } from "./envelope.js";
import { Keyset } from "./keyset.js";
import { DTYPES_BY_NAME, SCHEMES_BY_NAME } from "./schemes.js";

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("the featurelock reader needs a little-endian host (envelopes are little-endian floats)");
}

/**
 * @typedef {object} Features
 * @property {string} dtype     "float32", "float16" or "float64"
 * @property {number[]} shape
 * @property {Float32Array | Float64Array | Uint16Array} data  row-major; float16 as raw bits
 * @property {Uint8Array} bytes the little-endian plaintext bytes
 */

const VIEWS = { float32: Float32Array, float64: Float64Array, float16: Uint16Array };

export class FeatureReader {
  #keyset;
  #maxBytes;

  /** @param {Keyset} keyset @param {{maxBytes?: number}} [options] */
  constructor(keyset, { maxBytes = MAX_ENVELOPE_BYTES } = {}) {
    if (!(keyset instanceof Keyset)) throw new TypeError("keyset must be a Keyset");
    this.#keyset = keyset;
    this.#maxBytes = maxBytes;
  }

  /**
   * @param {Uint8Array | string} envelope binary envelope, or JSON text (string or ASCII bytes)
   * @param {{model: string, modelVersion?: string, tenant?: string}} context
   * @returns {Promise<Features>}
   */
  async read(envelope, context) {
    const ad = contextAssociatedData(context); // a malformed context is the caller's TypeError
    let env, material;
    try {
      env = parseEnvelope(envelope, this.#maxBytes);
      material = this.#keyset.materialFor(env.keyId, env.scheme);
    } catch {
      throw new DecryptionError();
    }
    if (material === null) throw new DecryptionError();
    const plain = await openSealed(env.scheme, material, env, concat(env.header, ad));
    if (plain.length !== env.payload.length) throw new DecryptionError();
    return { dtype: env.dtype, shape: env.shape, data: new VIEWS[env.dtype](plain.buffer, plain.byteOffset, plain.length / VIEWS[env.dtype].BYTES_PER_ELEMENT), bytes: plain };
  }
}

export class FeatureProtector {
  #keyset;

  /** @param {Keyset} keyset a public keyset (sealed schemes) or an aes-256-gcm keyset */
  constructor(keyset) {
    if (!(keyset instanceof Keyset)) throw new TypeError("keyset must be a Keyset");
    this.#keyset = keyset;
  }

  /**
   * The binary envelope of `features` (a Float32Array/Float64Array, or {dtype, data} with
   * float16 bits in a Uint16Array) of `shape`, bound to `context`.
   * @returns {Promise<Uint8Array>}
   */
  async protect(features, shape, context) {
    const dtypeName = features instanceof Float32Array ? "float32" : features instanceof Float64Array ? "float64"
      : features?.dtype === "float16" && features.data instanceof Uint16Array ? "float16" : null;
    const data = dtypeName === "float16" ? features.data : features;
    const dtype = DTYPES_BY_NAME.get(dtypeName);
    if (!dtype || !Array.isArray(shape) || shape.length < 1 || shape.length > 8
        || !shape.every((d) => Number.isInteger(d) && d >= 1 && d <= 0xffffffff)
        || shape.reduce((a, b) => a * b, 1) !== data.length) {
      throw new TypeError("features must be float32/float64 (or float16 bits) with 1 to 8 dimensions matching shape");
    }
    const { id, scheme: name, material } = this.#keyset.primaryKey();
    const scheme = SCHEMES_BY_NAME.get(name);
    if (!scheme || material === null) throw new KeysetError(`the primary key's scheme ${name} cannot encrypt here`);
    const plaintext = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const version = scheme.sealed ? 3 : 2;
    const header = encodeHeader(scheme, version, id, dtype.code, shape, plaintext.length);
    const { nonce, payload, tag } = await seal(name, material, plaintext, concat(header, contextAssociatedData(context)));
    return concat(header, nonce, payload, tag);
  }

  /** The JSON text form of protect()'s envelope. */
  async protectJson(features, shape, context) {
    return toJson(parseEnvelope(await this.protect(features, shape, context)));
  }
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
