/**
 * The context an envelope is bound to, encoded as Python's Context.associated_data():
 * "featurelock/context/v1", model, model version, tenant, each as a big-endian u16 byte length
 * followed by its UTF-8 bytes.
 */

const LABEL = "featurelock/context/v1";
const utf8 = new TextEncoder();
// Python cannot encode a lone surrogate to UTF-8; TextEncoder would silently write U+FFFD.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * @param {{model: string, modelVersion?: string, tenant?: string}} context
 * @returns {Uint8Array}
 */
export function contextAssociatedData({ model, modelVersion = "", tenant = "" }) {
  const parts = [LABEL, model, modelVersion, tenant].map((s) => {
    if (typeof s !== "string" || LONE_SURROGATE.test(s)) {
      throw new TypeError("context fields must be strings of valid Unicode");
    }
    const bytes = utf8.encode(s);
    if (bytes.length > 0xffff) throw new RangeError("a context field must be at most 65535 UTF-8 bytes");
    return bytes;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + 2 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out[at] = p.length >> 8;
    out[at + 1] = p.length & 0xff;
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}
