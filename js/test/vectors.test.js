// The same vector files as the Python suite (tests/vectors/): every valid vector opens to the
// exact bytes (or, for the Python-only ShuffleBits schemes, is the one error), every invalid
// vector is the one DecryptionError.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DecryptionError, FeatureReader, keysetFromDocument } from "../src/index.js";

const VECTORS = new URL("../../tests/vectors/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, VECTORS), "utf8"));
const OPENS = new Set(["aes-256-gcm", "hpke-x25519", "hpke-mlkem768-x25519"]);
const FILES = ["envelopes.json", "envelopes_v1.json", "envelopes_sealed.json"];

function keysetOf(v) {
  return keysetFromDocument({ primary: v.key_id, keys: [{ id: v.key_id, scheme: v.scheme, status: "enabled",
    created: 0, material: Buffer.from(v.key, "hex").toString("base64") }] });
}
const ctx = ([model, modelVersion, tenant]) => ({ model, modelVersion, tenant });
const float32Bytes = (rows) => new Uint8Array(new Float32Array(rows.flat(Infinity)).buffer);

async function assertOpaque(promise) {
  await assert.rejects(promise, (err) => err instanceof DecryptionError && err.message === "decryption failed"
    && err.constructor === DecryptionError);
}

const valid = [...FILES.flatMap((f) => load(f).valid.map((v) => ({ ...v, message: Buffer.from(v.envelope, "hex"), form: f }))),
  ...load("envelopes_json.json").valid.map((v) => ({ ...v, message: v.json, form: "json" }))];
const invalid = [...FILES.flatMap((f) => load(f).invalid.map((v) => ({ ...v, message: Buffer.from(v.envelope, "hex"), form: f }))),
  ...load("envelopes_json.json").invalid.flatMap((v) => [{ ...v, message: v.json, form: "json text" },
    { ...v, message: Buffer.from(v.json, "utf8"), form: "json bytes" }])];

test("every valid vector opens to the exact bytes (ShuffleBits: the one error, Python-only)", async () => {
  let opened = 0;
  for (const v of valid) {
    const read = new FeatureReader(keysetOf(v)).read(v.message, ctx(v.context));
    if (!OPENS.has(v.scheme)) {
      await assertOpaque(read);
      continue;
    }
    const out = await read;
    assert.deepEqual(out.shape, v.shape, `${v.form} ${v.scheme}`);
    assert.equal(out.dtype, "float32");
    assert.deepEqual(out.bytes, float32Bytes(v.plaintext), `${v.form} ${v.scheme}`);
    opened += 1;
  }
  assert.ok(opened >= 7, `opened ${opened}`); // aes v1/v2, both sealed, their JSON forms
});

test(`every invalid vector is the one DecryptionError (${invalid.length} cases)`, async () => {
  for (const v of invalid) {
    await assertOpaque(new FeatureReader(keysetOf(v)).read(v.message, ctx(v.context)));
  }
});
