/**
 * @featurelock/reader: read featurelock envelopes in Node >= 20 (docs/envelope-spec.md).
 *
 *   const keyset = await loadKeyset(fileText, { tenant: "acme", kek: kekBase64 });
 *   const { data, shape } = await new FeatureReader(keyset).read(body, { model: "reid", modelVersion: "1", tenant: "acme" });
 */

export { DecryptionError, FeaturelockError, KeysetError } from "./errors.js";
export { MAX_ENVELOPE_BYTES, parseEnvelope, toJson } from "./envelope.js";
export { contextAssociatedData } from "./context.js";
export { Keyset, kekFromBase64, loadKeyset, loadPublicKeyset, keysetFromDocument } from "./keyset.js";
export { FeatureProtector, FeatureReader } from "./reader.js";
