"""The registry of schemes, by name and by wire id."""

from __future__ import annotations

from ._scheme import Scheme
from .aes_gcm import AesGcm
from .hpke_sealed import HpkeMlkem768X25519, HpkeX25519
from .shufflebits import ShuffleBitsScheme
from .shufflebits_masked import ShuffleBitsMasked
from .shufflebits_otp import ShuffleBitsOtp

__all__ = ["SCHEMES", "SCHEMES_BY_ID", "DEFAULT_SCHEME", "leaky_schemes", "scheme_class",
           "scheme_leak", "sealed_schemes"]

SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls for cls in (AesGcm, ShuffleBitsScheme, ShuffleBitsOtp, ShuffleBitsMasked,
                              HpkeX25519, HpkeMlkem768X25519)
}
SCHEMES_BY_ID: dict[int, type[Scheme]] = {cls.scheme_id: cls for cls in SCHEMES.values()}
DEFAULT_SCHEME = AesGcm.name


def scheme_class(name: str) -> type[Scheme]:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown scheme {name!r}; choose one of {', '.join(SCHEMES)}") from None


def scheme_leak(name: str) -> str:
    """What a measured attack recovers through scheme `name`; "" if nothing."""
    return scheme_class(name).leaks


def sealed_schemes() -> list[str]:
    """The public-key schemes: the server holds only the consumer's public key."""
    return [name for name, cls in SCHEMES.items() if cls.sealed]


def leaky_schemes() -> dict[str, str]:
    """Scheme name -> leak sentence, for the schemes that measurably leak."""
    return {name: cls.leaks for name, cls in SCHEMES.items() if cls.leaks}
