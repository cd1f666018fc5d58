/**
 * Keyset files as featurelock's Python CLI writes them (docs/envelope-spec.md, "Keyset files"):
 *
 *   {"featurelock_keyset":1,"name":TENANT,"kek":URI,"wrapped":B64}   wrapped under a 32-byte
 *       local KEK (file:/env: KEKs; `featurelock keys export --out-kek` re-wraps for a reader)
 *   {"featurelock_keyset":1,"name":TENANT,"cleartext":DOC}            only with insecureCleartext
 *   {"featurelock_public_keyset":1,"keyset":DOC}                       public halves: seal only
 *
 * Key material stays inside Keyset objects: never in messages, toString or JSON.
 */

import { webcrypto } from "node:crypto";
import { KeysetError } from "./errors.js";
import { SCHEMES_BY_NAME } from "./schemes.js";

const subtle = webcrypto.subtle;
const STATUSES = new Set(["enabled", "disabled", "destroyed"]);
/** Valid material length per scheme this reader can use (hpke: tag byte "S"/"P" + key). */
const MATERIAL = {
  "aes-256-gcm": (m) => m.length === 32,
  "hpke-x25519": (m) => (m[0] === 0x53 || m[0] === 0x50) && m.length === 33,
  "hpke-mlkem768-x25519": (m) => (m[0] === 0x53 && m.length === 97) || (m[0] === 0x50 && m.length === 1217),
};

/** @typedef {{id: number, scheme: string, status: string, created: number, material: Uint8Array | null}} KeyEntry */

export class Keyset {
  /** @type {Map<number, KeyEntry>} */ #keys;
  /** @type {number} */ #primary;

  /** @param {Map<number, KeyEntry>} keys @param {number} primary */
  constructor(keys, primary) {
    this.#keys = keys;
    this.#primary = primary;
  }

  get primaryId() { return this.#primary; }

  /** Ids, schemes and statuses: everything but the material. */
  info() {
    return [...this.#keys.values()].map(({ id, scheme, status, created }) => (
      { id, scheme, status, created, primary: id === this.#primary }));
  }

  /** The material of an enabled key of `scheme`, or null (the reader turns null into its error). */
  materialFor(id, scheme) {
    const key = this.#keys.get(id);
    return key && key.status === "enabled" && key.scheme === scheme ? key.material : null;
  }

  /** @returns {{id: number, scheme: string, material: Uint8Array}} the primary key */
  primaryKey() {
    const key = this.#keys.get(this.#primary);
    return { id: key.id, scheme: key.scheme, material: key.material };
  }

  toString() { return `Keyset(primary=${this.#primary}, keys=${this.#keys.size})`; }
  toJSON() { return this.toString(); }
  [Symbol.for("nodejs.util.inspect.custom")]() { return this.toString(); }
}

function b64Strict(value) {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4) return null;
  return new Uint8Array(Buffer.from(value, "base64"));
}

/** A Keyset from the decoded keyset document {"primary": id, "keys": [...]}. */
export function keysetFromDocument(doc) {
  const keys = new Map();
  if (doc === null || typeof doc !== "object" || !Array.isArray(doc.keys)) throw new KeysetError("malformed keyset document");
  for (const entry of doc.keys) {
    const { id, scheme, status, created, material } = entry ?? {};
    if (!Number.isInteger(id) || typeof scheme !== "string" || !STATUSES.has(status)
        || !Number.isInteger(created) || (status === "destroyed") !== (material === null) || keys.has(id)) {
      throw new KeysetError("malformed keyset document");
    }
    const raw = material === null ? null : b64Strict(material);
    if (material !== null && (raw === null || (MATERIAL[scheme] && !MATERIAL[scheme](raw)))) {
      throw new KeysetError("malformed keyset document");
    }
    keys.set(id, { id, scheme, status, created, material: raw });
  }
  const primary = keys.get(doc.primary);
  if (!primary || primary.status !== "enabled") throw new KeysetError("malformed keyset document");
  return new Keyset(keys, doc.primary);
}

/** 32 KEK bytes from the base64 text a file: or env: KEK holds (surrounding whitespace ignored). */
export function kekFromBase64(text) {
  const raw = b64Strict(String(text).trim());
  if (raw === null || raw.length !== 32) throw new KeysetError("a KEK is 32 bytes of base64");
  return raw;
}

function parseJsonText(text, what) {
  try {
    return JSON.parse(typeof text === "string" ? text : Buffer.from(text).toString("utf8"));
  } catch {
    throw new KeysetError(`not a featurelock ${what} file`);
  }
}

/**
 * A consumer's keyset from a keyset file's text or bytes.
 * @param {string | Uint8Array} file
 * @param {{tenant: string, kek?: Uint8Array | string, insecureCleartext?: boolean}} options
 *   kek: 32 bytes, or the base64 text of a file:/env: KEK; tenant: the name the wrap is bound to
 * @returns {Promise<Keyset>}
 */
export async function loadKeyset(file, { tenant, kek, insecureCleartext = false }) {
  const doc = parseJsonText(file, "keyset");
  if (doc?.featurelock_keyset !== 1 || doc.name !== tenant) {
    throw new KeysetError(`keyset file is not the keyset of ${JSON.stringify(tenant)}`);
  }
  if (Object.hasOwn(doc, "cleartext")) {
    if (!insecureCleartext) throw new KeysetError("keyset is stored in cleartext; pass insecureCleartext: true to load it");
    return keysetFromDocument(doc.cleartext);
  }
  if (kek === undefined) throw new KeysetError("keyset is wrapped; a key-encryption key is required");
  const kekBytes = typeof kek === "string" ? kekFromBase64(kek) : kek;
  const wrapped = b64Strict(doc.wrapped);
  if (!(kekBytes instanceof Uint8Array) || kekBytes.length !== 32 || wrapped === null || wrapped.length < 28) {
    throw new KeysetError("keyset cannot be unwrapped with this KEK");
  }
  let plain;
  try {
    const key = await subtle.importKey("raw", kekBytes, "AES-GCM", false, ["decrypt"]);
    plain = await subtle.decrypt({ name: "AES-GCM", iv: wrapped.subarray(0, 12),
      additionalData: new TextEncoder().encode(`featurelock/keyset/v1/${tenant}`) }, key, wrapped.subarray(12));
  } catch {
    throw new KeysetError("keyset cannot be unwrapped with this KEK");
  }
  return keysetFromDocument(parseJsonText(new Uint8Array(plain), "keyset"));
}

/** The public halves a consumer exported (`featurelock keys export-public`): seal only. */
export function loadPublicKeyset(file) {
  const doc = parseJsonText(file, "public keyset");
  if (doc?.featurelock_public_keyset !== 1) throw new KeysetError("not a featurelock public keyset file");
  const keyset = keysetFromDocument(doc.keyset);
  for (const { id, scheme } of keyset.info()) {
    const m = keyset.materialFor(id, scheme);
    if (!SCHEMES_BY_NAME.get(scheme)?.sealed || (m !== null && m[0] !== 0x50)) {
      throw new KeysetError("a public keyset file holds only public halves of sealed keys");
    }
  }
  return keyset;
}
