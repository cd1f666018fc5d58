import assert from "node:assert/strict";
import { test } from "node:test";
import { fuzz } from "../scripts/fuzz.js";

test("3,000 mutated envelopes give only DecryptionError (npm run fuzz: 100,000)", async () => {
  assert.equal(await fuzz(3000, 1), 3000);
});
