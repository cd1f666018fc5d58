"""shufflebits-otp: the paper's "one-time pad" deployment of ShuffleBits.

Each message gets a fresh bit permutation: a Beneš network whose switches are set by the
AES-256-CTR keystream under an HKDF subkey and the message's random 96-bit nonce (carried in
the envelope), so equal features no longer give equal ciphertexts. Authenticated by an AES-GCM
tag in the envelope.

Security: randomised, but still a pure bit permutation: each bit column of a message survives,
so the same features encrypted twice are recognised (equality), people are linked across
cameras, and the values themselves are recovered from ciphertext alone (the attack harness's
`recovered` reading: sign, exponent and top mantissa columns found per message). NOT
semantically secure, NOT a one-time pad in any useful sense. Size-preserving: the ciphertext is a float32 array of the same shape.
"""

from __future__ import annotations

from ._kernels import Network
from ._legacy_v1 import LegacyV1Reader
from ._permutation_scheme import MessageNetworks, PermutationScheme, derive_key

__all__ = ["ShuffleBitsOtp"]


class ShuffleBitsOtp(PermutationScheme):
    """Fresh ShuffleBits permutation per message; AES-GCM tag. Leaks Hamming weights."""

    name = "shufflebits-otp"
    scheme_id = 3
    key_size = 32
    legacy_nonce_size = 16
    leaks = ("a fresh bit permutation per message keeps every bit column of the message, so "
             "an attacker that reads whole messages recognises equal features, links people "
             "across cameras and recovers the values from ciphertext alone (featurelock scan)")

    __slots__ = ("_networks",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        key = bytes(key)
        super().__init__(derive_key(key, f"{self.name}/v2/mac"),
                         LegacyV1Reader(derive_key(key, f"{self.name}/mac"),
                                        perm_key=derive_key(key, f"{self.name}/perm")))
        self._networks = MessageNetworks(derive_key(key, f"{self.name}/v2/perm"))

    def _network(self, nonce: bytes) -> Network:
        return self._networks.forward(nonce)

    def _inverse_network(self, nonce: bytes) -> Network:
        return self._networks.inverse(nonce)
