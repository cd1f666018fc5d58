// The context encoding of docs/envelope-spec.md section 4, byte for byte.
import assert from "node:assert/strict";
import { test } from "node:test";
import { contextAssociatedData } from "../src/index.js";

test("the context is four u16-length-prefixed UTF-8 strings", () => {
  const hex = Buffer.from(contextAssociatedData({ model: "reid-compact", modelVersion: "1", tenant: "acme" })).toString("hex");
  assert.equal(hex, "0016666561747572656c6f636b2f636f6e746578742f7631" + "000c726569642d636f6d70616374" + "000131" + "000461636d65");
  assert.equal(Buffer.from(contextAssociatedData({ model: "é" })).toString("hex").slice(48), "0002c3a900000000");
  assert.throws(() => contextAssociatedData({ model: "a\uD800" }), TypeError);
  assert.throws(() => contextAssociatedData({ model: "x".repeat(65536) }), RangeError);
});
