/**
 * Opening and sealing per scheme. aes-256-gcm runs on WebCrypto; the sealed schemes on
 * @hpke/core (RFC 9180 base mode, single shot, HKDF-SHA256, AES-256-GCM) with the KEM from
 * @hpke/dhkem-x25519 or, for the hybrid, @hpke/hybridkem-x-wing (KEM 0x647A, the same KEM as
 * Python's cryptography `KEM.MLKEM768_X25519`). Every failure here is DecryptionError.
 */

import { webcrypto } from "node:crypto";
import { Aes256Gcm, CipherSuite } from "@hpke/core";
import { DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/dhkem-x25519";
import { XWing } from "@hpke/hybridkem-x-wing";
import { sha3_256 } from "mlkem"; // the SHA3 @hpke/hybridkem-x-wing itself uses
import { DecryptionError } from "./errors.js";

const subtle = webcrypto.subtle;
const AEAD_TAG = 16;
const PRIVATE = 0x53; // "S"
const PUBLIC = 0x50; // "P"
const X25519_BASE = new Uint8Array(32);
X25519_BASE[0] = 9;
const XWING_LABEL = new Uint8Array([0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c]); // "\.//^\"

/**
 * X-Wing whose private key is featurelock's stored form: ML-KEM-768 seed (64) || X25519 (32),
 * i.e. the 96 bytes X-Wing expands its 32-byte seed into (SHAKE256). Encapsulation and the
 * public key are unchanged; decapsulation is X-Wing's with the expansion step skipped.
 */
class XWingExpanded extends XWing {
  constructor() {
    super();
    this.privateKeySize = 96;
  }

  async _expandDecapsulationKey(sk) {
    const [pkM, skM] = await this._m.deriveKeyPair(sk.subarray(0, 64));
    const skX = sk.subarray(64, 96);
    return [skM, skX, pkM, new Uint8Array(await this._x25519.derive(skX, X25519_BASE))];
  }

  async decap(params) {
    const enc = new Uint8Array(params.enc);
    const sk = new Uint8Array(await this.serializePrivateKey(params.recipientKey));
    if (enc.length !== 1120 || sk.length !== 96) throw new DecryptionError();
    const [skM, skX, , pkX] = await this._expandDecapsulationKey(sk);
    const ctX = enc.subarray(1088);
    const ssM = await this._m.decap(enc.subarray(0, 1088), skM);
    const ssX = new Uint8Array(await this._x25519.derive(skX, ctX));
    const input = new Uint8Array([...ssM, ...ssX, ...ctX, ...pkX, ...XWING_LABEL]);
    return sha3_256.create().update(input).digest().buffer;
  }
}

const SUITES = {
  "hpke-x25519": { kem: () => new DhkemX25519HkdfSha256(), encSize: 32 },
  "hpke-mlkem768-x25519": { kem: () => new XWingExpanded(), encSize: 1120 },
};
const suites = new Map();
function suite(scheme) {
  if (!suites.has(scheme)) {
    suites.set(scheme, new CipherSuite({ kem: SUITES[scheme].kem(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }));
  }
  return suites.get(scheme);
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Imported keys, per material object (a Keyset's material is never replaced, only dropped). */
const imported = new WeakMap();
async function cached(material, make) {
  if (!imported.has(material)) imported.set(material, await make());
  return imported.get(material);
}

/**
 * Open `payload || tag` of a parsed envelope. @returns {Promise<Uint8Array>} the plaintext bytes
 */
export async function openSealed(scheme, material, env, associatedData) {
  try {
    if (scheme === "aes-256-gcm") {
      const key = await cached(material, () => subtle.importKey("raw", material, "AES-GCM", false, ["decrypt"]));
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: env.nonce, additionalData: associatedData },
        key, concat(env.payload, env.tag)));
    }
    if (SUITES[scheme] && material[0] === PRIVATE) {
      const s = suite(scheme);
      const key = await cached(material, () => s.kem.deserializePrivateKey(material.subarray(1)));
      const encSize = SUITES[scheme].encSize;
      const enc = env.tag.subarray(0, encSize);
      return new Uint8Array(await s.open({ recipientKey: key, enc, info: associatedData },
        concat(env.payload, env.tag.subarray(encSize))));
    }
  } catch {
    throw new DecryptionError();
  }
  throw new DecryptionError();
}

/**
 * Seal `plaintext` for an envelope whose header is already known (it is part of the
 * associated data). @returns {Promise<{nonce: Uint8Array, payload: Uint8Array, tag: Uint8Array}>}
 */
export async function seal(scheme, material, plaintext, associatedData) {
  if (scheme === "aes-256-gcm") {
    const nonce = webcrypto.getRandomValues(new Uint8Array(12));
    const key = await subtle.importKey("raw", material, "AES-GCM", false, ["encrypt"]);
    const out = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: associatedData }, key, plaintext));
    return { nonce, payload: out.subarray(0, plaintext.length), tag: out.subarray(plaintext.length) };
  }
  if (SUITES[scheme]) {
    const s = suite(scheme);
    // The server side of a sealed scheme holds only public halves (`keys export-public`).
    if (material[0] !== PUBLIC) throw new TypeError("seal with the public half: load the export-public file");
    const key = await s.kem.deserializePublicKey(material.subarray(1));
    const { ct: sealed, enc } = await s.seal({ recipientPublicKey: key, info: associatedData }, plaintext);
    const ct = new Uint8Array(sealed);
    const n = plaintext.length;
    return { nonce: new Uint8Array(0), payload: ct.subarray(0, n), tag: concat(new Uint8Array(enc), ct.subarray(n, n + AEAD_TAG)) };
  }
  throw new TypeError(`${scheme} is not implemented in the JS reader (Python only)`);
}
