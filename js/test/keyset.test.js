// Keyset files: a KEK-wrapped file opens only under its KEK and tenant, cleartext only with
// the explicit flag, and a public keyset file with private material is refused. The files are
// built here from the spec (docs/envelope-spec.md, "Keyset files"); the cross-language test
// (tests/test_js_reader.py) reads the ones the Python CLI writes.
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { test } from "node:test";
import { KeysetError, loadKeyset, loadPublicKeyset } from "../src/index.js";

const KEY = { id: 7, scheme: "aes-256-gcm", status: "enabled", created: 0, material: Buffer.alloc(32, 1).toString("base64") };
const DOC = { primary: 7, keys: [KEY] };
const KEK = webcrypto.getRandomValues(new Uint8Array(32));

async function wrapped(doc, kek, tenant) {
  const nonce = webcrypto.getRandomValues(new Uint8Array(12));
  const key = await webcrypto.subtle.importKey("raw", kek, "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array(await webcrypto.subtle.encrypt({ name: "AES-GCM", iv: nonce,
    additionalData: new TextEncoder().encode(`featurelock/keyset/v1/${tenant}`) }, key, new TextEncoder().encode(JSON.stringify(doc))));
  return JSON.stringify({ featurelock_keyset: 1, name: tenant, kek: "file:k", wrapped: Buffer.concat([nonce, ct]).toString("base64") });
}

test("a wrapped keyset opens under its KEK and tenant only", async () => {
  const file = await wrapped(DOC, KEK, "acme");
  const keyset = await loadKeyset(file, { tenant: "acme", kek: Buffer.from(KEK).toString("base64") + "\n" });
  assert.deepEqual(keyset.info(), [{ id: 7, scheme: "aes-256-gcm", status: "enabled", created: 0, primary: true }]);
  assert.ok(!String(keyset).includes(KEY.material) && !JSON.stringify(keyset).includes(KEY.material));
  const other = webcrypto.getRandomValues(new Uint8Array(32));
  await assert.rejects(loadKeyset(file, { tenant: "acme", kek: other }), KeysetError);
  await assert.rejects(loadKeyset(file, { tenant: "other", kek: KEK }), KeysetError);
  await assert.rejects(loadKeyset(await wrapped(DOC, KEK, "other"), { tenant: "acme", kek: KEK }), KeysetError);
  await assert.rejects(loadKeyset(file, { tenant: "acme" }), KeysetError);
  const noPrimary = await wrapped({ ...DOC, keys: [{ ...KEY, status: "disabled" }] }, KEK, "acme");
  await assert.rejects(loadKeyset(noPrimary, { tenant: "acme", kek: KEK }), KeysetError);
  const shortKey = await wrapped({ ...DOC, keys: [{ ...KEY, material: "AAAA" }] }, KEK, "acme");
  await assert.rejects(loadKeyset(shortKey, { tenant: "acme", kek: KEK }), KeysetError);
});

test("cleartext keysets need insecureCleartext", async () => {
  const file = JSON.stringify({ featurelock_keyset: 1, name: "acme", cleartext: DOC });
  await assert.rejects(loadKeyset(file, { tenant: "acme", kek: KEK }), /insecureCleartext/);
  assert.equal((await loadKeyset(file, { tenant: "acme", insecureCleartext: true })).primaryId, 7);
});

test("public keyset files hold only public halves of sealed keys", () => {
  const pub = (material, scheme = "hpke-x25519") => JSON.stringify({ featurelock_public_keyset: 1,
    keyset: { primary: 1, keys: [{ id: 1, scheme, status: "enabled", created: 0, material: Buffer.from(material).toString("base64") }] } });
  assert.equal(loadPublicKeyset(pub([0x50, ...new Uint8Array(32)])).primaryId, 1);
  assert.throws(() => loadPublicKeyset(pub([0x53, ...new Uint8Array(32)])), KeysetError);
  assert.throws(() => loadPublicKeyset(pub(new Uint8Array(32), "aes-256-gcm")), KeysetError);
});
