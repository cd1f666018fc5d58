/**
 * The wire registry (docs/envelope-spec.md, "Schemes"): every scheme id the envelope can name,
 * with the versions it reads and its nonce/tag sizes per version. Parsing knows all six so it
 * is exactly as strict as Python's; opening is implemented for aes-256-gcm and the sealed
 * schemes only (the ShuffleBits family stays Python-only and reads as DecryptionError).
 */

/** @typedef {{name: string, id: number, versions: number[], dtypes: string[],
 *   sizes: (version: number) => [number, number], sealed: boolean}} SchemeInfo */

const ALL_FLOATS = ["float32", "float16", "float64"];
const shuffle = (name, id, legacyNonce) => ({
  name, id, versions: [1, 2], dtypes: ["float32"], sealed: false,
  sizes: (v) => (v === 1 ? [legacyNonce, 32] : [12, 16]),
});

/** @type {SchemeInfo[]} */
const LIST = [
  { name: "aes-256-gcm", id: 1, versions: [1, 2], dtypes: ALL_FLOATS, sealed: false, sizes: () => [12, 16] },
  shuffle("shufflebits", 2, 0),
  shuffle("shufflebits-otp", 3, 16),
  shuffle("shufflebits-masked", 4, 16),
  { name: "hpke-x25519", id: 5, versions: [3], dtypes: ALL_FLOATS, sealed: true, sizes: () => [0, 32 + 16] },
  { name: "hpke-mlkem768-x25519", id: 6, versions: [3], dtypes: ALL_FLOATS, sealed: true,
    sizes: () => [0, 1088 + 32 + 16] },
];

export const SCHEMES_BY_NAME = new Map(LIST.map((s) => [s.name, s]));
export const SCHEMES_BY_ID = new Map(LIST.map((s) => [s.id, s]));

/** dtype wire code -> name and item size (all little-endian IEEE 754). */
export const DTYPES_BY_CODE = new Map([[1, ["float32", 4]], [2, ["float16", 2]], [3, ["float64", 8]]]);
export const DTYPES_BY_NAME = new Map([...DTYPES_BY_CODE].map(([code, [name, size]]) => [name, { code, size }]));
