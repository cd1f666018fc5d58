"""Throw-away SoftHSM2 tokens for tests (PKCS#11 KEKs, keysets under them, the CLI).

    token = make_softhsm_token(tmp_path, monkeypatch, label="featurelock")
    kek = Pkcs11Kek.generate(token.uri)                       # in this process
    subprocess.run([...], env={**os.environ, **token.env})   # in a child process

Each test gets its own token directory and random PINs. Several calls in one test share the
directory, so the tokens see each other. SoftHSM2 reads SOFTHSM2_CONF only when the module is
initialised, so making a token closes featurelock's PKCS#11 sessions and re-initialises the
module: do not keep sessions of your own open across a call.

Without softhsm2-util (or python-pkcs11) the test is skipped, except when $CI is set: CI must
really run these tests, so there it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",  # Debian, Ubuntu
    "/usr/lib64/pkcs11/libsofthsm2.so",  # Fedora
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    uri: str  # pkcs11: uri of the KEK object (not created yet: Pkcs11Kek.generate(uri))
    module_path: str
    key_label: str
    pin_env: str  # the variable pin-source names; set in this process by monkeypatch
    conf_path: Path
    pin: str = field(repr=False)
    so_pin: str = field(repr=False)
    env: dict[str, str] = field(repr=False, default_factory=dict)  # for children: conf + PIN


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the SoftHSM2 tests (apt-get install softhsm2)")
    pytest.skip(reason)


def softhsm_module() -> str:
    """Path of libsofthsm2.so, or skip (fail under CI) when SoftHSM2 is not installed."""
    util = shutil.which("softhsm2-util")
    candidates = [os.environ.get("FEATURELOCK_PKCS11_MODULE", ""), *_MODULE_CANDIDATES]
    module = next((c for c in candidates if c and os.path.isfile(c)), None)
    if util is None or module is None:
        _unavailable("SoftHSM2 is not installed (softhsm2-util or libsofthsm2.so missing)")
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        _unavailable("python-pkcs11 is not installed (pip install featurelock[hsm])")
    return module


def reset_pkcs11(module_path: str) -> None:
    """Close featurelock's sessions and re-initialise the module so it rereads SOFTHSM2_CONF."""
    import pkcs11

    for name, module in list(sys.modules.items()):  # featurelock.middleware or middleware
        if name.endswith("middleware._pkcs11") and hasattr(module, "close_all"):
            module.close_all()
    pkcs11.lib(module_path).reinitialize()


def make_softhsm_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    label: str = "featurelock",
    key_label: str = "featurelock-kek",
) -> SoftHsmToken:
    """Initialise a fresh token labelled `label` under tmp_path; set SOFTHSM2_CONF and its PIN."""
    module_path = softhsm_module()
    root = tmp_path / "softhsm2"
    tokendir = root / "tokens"
    tokendir.mkdir(parents=True, exist_ok=True)
    conf_path = root / "softhsm2.conf"
    conf_path.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label,
         "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(conf_path)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    pin_env = "FEATURELOCK_TEST_PIN_" + re.sub(r"\W", "_", label).upper()
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf_path))
    monkeypatch.setenv(pin_env, pin)
    reset_pkcs11(module_path)
    uri = (f"pkcs11:token={quote(label, safe='')};object={quote(key_label, safe='')}"
           f"?module-path={module_path}&pin-source=env:{pin_env}")
    return SoftHsmToken(
        label=label,
        uri=uri,
        module_path=module_path,
        key_label=key_label,
        pin_env=pin_env,
        conf_path=conf_path,
        pin=pin,
        so_pin=so_pin,
        env={"SOFTHSM2_CONF": str(conf_path), pin_env: pin},
    )
