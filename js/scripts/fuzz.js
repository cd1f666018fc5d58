// Mutation fuzzing of the JS reader: `node scripts/fuzz.js [COUNT] [SEED]`. Mutates every valid
// vector (binary and JSON text, all six schemes) with a seeded PRNG and fails on any exception
// but DecryptionError, and on any mutant that decrypts (each envelope has one encoding).
// make test runs 3,000 (test/fuzz.test.js); `npm run fuzz` runs 100,000.
import { readFileSync } from "node:fs";
import { DecryptionError, FeatureReader, keysetFromDocument } from "../src/index.js";

const VECTORS = new URL("../../tests/vectors/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(name, VECTORS), "utf8"));

function prng(seed) { // mulberry32: reproducible mutations for a given seed
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 2, 3, 8, 9, 0x7b, 0x7f, 0x80, 0xff];

function mutateBytes(data, rand, others) {
  const int = (n) => Math.floor(rand() * n);
  let out = Uint8Array.from(data);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    const at = int(out.length + 1);
    switch (int(8)) {
      case 0: if (out.length) out[Math.min(at, out.length - 1)] ^= 1 << int(8); break;
      case 1: if (out.length) out[Math.min(at, out.length - 1)] = INTERESTING[int(INTERESTING.length)]; break;
      case 2: out = out.subarray(0, at); break;
      case 3: out = Uint8Array.from([...out.subarray(0, at), int(256), ...out.subarray(at)]); break;
      case 4: out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + int(4))]); break;
      case 5: { // a header byte (version, scheme, dtype, ndim, lengths) set to something else
        const i = int(Math.min(out.length, 40));
        if (out.length) out[i] = int(256);
        break;
      }
      case 6: { // splice another vector in
        const o = others[int(others.length)];
        const from = int(o.length);
        out = Uint8Array.from([...out.subarray(0, at), ...o.subarray(from, from + 1 + int(16))]);
        break;
      }
      default: if (out.length) out[int(out.length)] = int(256);
    }
  }
  return out;
}

const JSON_BITS = ['"', ",", ":", "{", "}", "[", "]", " ", "\\", "0", "1", "-", "e", ".", "=", "A", "/", "+", "é", "\u0000"];

function mutateText(text, rand) {
  const int = (n) => Math.floor(rand() * n);
  let out = text;
  for (let r = 1 + int(3); r > 0; r--) {
    const at = int(out.length + 1);
    const bit = JSON_BITS[int(JSON_BITS.length)];
    switch (int(4)) {
      case 0: out = out.slice(0, at) + bit + out.slice(at + 1); break;
      case 1: out = out.slice(0, at) + bit + out.slice(at); break;
      case 2: out = out.slice(0, at) + out.slice(at + 1 + int(3)); break;
      default: out = out.slice(0, at);
    }
  }
  return out;
}

export async function fuzz(count, seed = 1) {
  const rand = prng(seed);
  const cases = ["envelopes.json", "envelopes_v1.json", "envelopes_sealed.json"].flatMap((f) => load(f).valid)
    .map((v) => ({ v, binary: new Uint8Array(Buffer.from(v.envelope, "hex")) }));
  for (const c of cases) {
    c.reader = new FeatureReader(keysetFromDocument({ primary: c.v.key_id, keys: [{ id: c.v.key_id,
      scheme: c.v.scheme, status: "enabled", created: 0, material: Buffer.from(c.v.key, "hex").toString("base64") }] }));
    const [model, modelVersion, tenant] = c.v.context;
    c.context = { model, modelVersion, tenant };
    c.text = load("envelopes_json.json").valid.find((j) => j.scheme === c.v.scheme && j.nonce === c.v.nonce
      && j.key === c.v.key).json;
  }
  const others = cases.map((c) => c.binary);
  let refused = 0;
  for (let i = 0; refused < count; i++) {
    const c = cases[Math.floor(rand() * cases.length)];
    const asText = rand() < 0.3;
    const mutant = asText ? mutateText(c.text, rand) : mutateBytes(c.binary, rand, others);
    if (asText ? mutant === c.text : Buffer.compare(mutant, c.binary) === 0) continue; // not a mutant
    try { // JSON text goes in as a string or as bytes (both are accepted forms)
      await c.reader.read(asText && rand() < 0.5 ? new Uint8Array(Buffer.from(mutant, "utf8")) : mutant, c.context);
    } catch (err) {
      if (err.constructor === DecryptionError && err.message === "decryption failed") {
        refused += 1;
        continue;
      }
      throw new Error(`iteration ${i} (seed ${seed}): ${err.constructor.name}: ${err.message}`);
    }
    throw new Error(`iteration ${i} (seed ${seed}): a mutant of ${c.v.scheme} decrypted`);
  }
  return refused;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 100000);
  const seed = Number(process.argv[3] ?? 1);
  const start = process.hrtime.bigint();
  const refused = await fuzz(count, seed);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`fuzz: ${refused} mutated envelopes (seed ${seed}), every one refused with DecryptionError `
    + `and nothing else, ${seconds.toFixed(1)} s`);
}
