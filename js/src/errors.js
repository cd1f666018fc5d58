/**
 * The reader's errors. Every failure to read an envelope is the one DecryptionError, with no
 * detail (as in Python's featurelock.middleware.DecryptionError); loading a keyset file that
 * is malformed, wrongly wrapped or refused is a KeysetError, whose message never holds key bytes.
 *
 *   FeaturelockError
 *    ├── DecryptionError   "decryption failed": malformed, truncated, oversized, tampered,
 *    │                     wrong key, wrong context, a scheme this reader does not open
 *    └── KeysetError       a keyset file could not be loaded or used to encrypt
 */

export class FeaturelockError extends Error {}

export class DecryptionError extends FeaturelockError {
  constructor() {
    super("decryption failed");
    this.name = "DecryptionError";
  }
}

export class KeysetError extends FeaturelockError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "KeysetError";
  }
}
