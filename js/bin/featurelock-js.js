#!/usr/bin/env node
// featurelock-js: open or seal one envelope from the command line (what the Python side's
// cross-language tests drive; also a worked example of the package's API).
//
//   featurelock-js open  --keyset F --tenant T (--kek-file K | --insecure-cleartext) --model M
//                        [--model-version V] ENVELOPE OUT_RAW      writes the little-endian
//                        features to OUT_RAW and {"dtype","shape"} to stdout
//   featurelock-js seal  (--public-keyset F | --keyset F --tenant T --kek-file K) --model M
//                        [--model-version V] [--tenant T] --dtype float32|float64 --shape 2,3
//                        [--json] IN_RAW OUT_ENVELOPE
// Exit status: 0 done, 1 "decryption failed" (the one error), 2 usage or keyset error.
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DecryptionError, FeatureProtector, FeatureReader, loadKeyset, loadPublicKeyset } from "../src/index.js";

const { values: o, positionals: [command, input, output] } = parseArgs({
  allowPositionals: true,
  options: Object.fromEntries(["keyset", "public-keyset", "tenant", "kek-file", "model", "model-version",
    "dtype", "shape"].map((k) => [k, { type: "string" }]).concat(
    [["insecure-cleartext", { type: "boolean" }], ["json", { type: "boolean" }]])),
});

async function main() {
  const context = { model: o.model, modelVersion: o["model-version"] ?? "", tenant: o.tenant ?? "" };
  if (command === "open") {
    const keyset = await loadKeyset(readFileSync(o.keyset), { tenant: o.tenant,
      kek: o["kek-file"] && readFileSync(o["kek-file"], "ascii"), insecureCleartext: o["insecure-cleartext"] });
    const out = await new FeatureReader(keyset).read(new Uint8Array(readFileSync(input)), context);
    writeFileSync(output, out.bytes);
    console.log(JSON.stringify({ dtype: out.dtype, shape: out.shape }));
  } else if (command === "seal") {
    const keyset = o["public-keyset"] ? loadPublicKeyset(readFileSync(o["public-keyset"]))
      : await loadKeyset(readFileSync(o.keyset), { tenant: o.tenant, kek: readFileSync(o["kek-file"], "ascii") });
    const raw = readFileSync(input);
    const View = { float32: Float32Array, float64: Float64Array }[o.dtype];
    const features = new View(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const protector = new FeatureProtector(keyset);
    const shape = o.shape.split(",").map(Number);
    writeFileSync(output, o.json ? await protector.protectJson(features, shape, context)
      : await protector.protect(features, shape, context));
  } else {
    throw new TypeError("usage: featurelock-js open|seal ... (see the comment at the top)");
  }
}

main().catch((err) => {
  console.error(`featurelock-js: ${err instanceof DecryptionError ? "decryption failed" : err.message}`);
  process.exit(err instanceof DecryptionError ? 1 : 2);
});
