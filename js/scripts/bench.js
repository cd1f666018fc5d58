// µs per read of one 2048-d float32 aes-256-gcm envelope (binary, and JSON text), best of 7
// rounds of >= 0.15 s each, as `featurelock bench` times Python. `make bench-js` prints this
// beside Python's figure for the same envelope.
import { webcrypto } from "node:crypto";
import { FeatureProtector, FeatureReader, keysetFromDocument, toJson, parseEnvelope } from "../src/index.js";

const keyset = keysetFromDocument({ primary: 1, keys: [{ id: 1, scheme: "aes-256-gcm", status: "enabled", created: 0,
  material: Buffer.from(webcrypto.getRandomValues(new Uint8Array(32))).toString("base64") }] });
const context = { model: "reid-compact", modelVersion: "1", tenant: "acme" };
const features = Float32Array.from({ length: 2048 }, () => Math.random() - 0.5);
const envelope = await new FeatureProtector(keyset).protect(features, [1, 2048], context);
const text = toJson(parseEnvelope(envelope));
const reader = new FeatureReader(keyset);

async function bestMicros(message, rounds = 7, minTime = 0.15) {
  let n = 1;
  for (;;) { // calibrate
    const start = performance.now();
    for (let i = 0; i < n; i++) await reader.read(message, context);
    if ((performance.now() - start) / 1000 >= minTime / 4) break;
    n *= 2;
  }
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < n; i++) await reader.read(message, context);
    best = Math.min(best, ((performance.now() - start) * 1000) / n);
  }
  return best;
}

console.log(`node ${process.version}: aes-256-gcm 2048-d read, binary ${(await bestMicros(envelope)).toFixed(1)} µs, `
  + `JSON text ${(await bestMicros(text)).toFixed(1)} µs (best of 7 rounds)`);
