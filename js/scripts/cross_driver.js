// Test helper for tests/test_js_reader.py: runs a batch of open/seal jobs in one Node process
// (Node's start-up dominates otherwise) and prints one JSON result per job.
//   node scripts/cross_driver.js JOBS.json   with {"keys": {...}, "context": {...}, "jobs": [...]}
import { readFileSync, writeFileSync } from "node:fs";
import { FeatureProtector, FeatureReader, loadKeyset, loadPublicKeyset } from "../src/index.js";

const { keys, context, jobs } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const keyset = await loadKeyset(readFileSync(keys.keyset), { tenant: keys.tenant, kek: readFileSync(keys.kek_file, "ascii") });
const sealTo = keys.public_keyset ? loadPublicKeyset(readFileSync(keys.public_keyset)) : keyset;
const VIEWS = { float32: Float32Array, float64: Float64Array };
const results = [];
for (const job of jobs) {
  try {
    if (job.op === "open") {
      const message = job.text ? readFileSync(job.in, "ascii") : new Uint8Array(readFileSync(job.in));
      const out = await new FeatureReader(keyset).read(message, job.context ?? context);
      writeFileSync(job.out, out.bytes);
      results.push({ dtype: out.dtype, shape: out.shape });
    } else {
      const raw = readFileSync(job.in);
      const features = new VIEWS[job.dtype](raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const protector = new FeatureProtector(sealTo);
      writeFileSync(job.out, job.json ? await protector.protectJson(features, job.shape, context)
        : await protector.protect(features, job.shape, context));
      results.push({ sealed: true });
    }
  } catch (err) {
    results.push({ error: err.constructor.name, message: err.message });
  }
}
console.log(JSON.stringify(results));
