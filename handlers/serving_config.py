"""The `featurelock:` section of a model-config.yaml: what a worker serves, and how.

    featurelock:
      scheme: aes-256-gcm            # a middleware scheme, `crafter`, or `plaintext` (baselines)
      model: reid-compact            # name and version bound into every envelope's context
      version: "1"
      model_file: model.ts           # inside the .mar
      backend: torchscript           # torchscript | onnx
      profile: {name: reid-128x64, height: 128, width: 64, mean: [...], std: [...],
                channel_order: RGB, resize: stretch, output: l2}   # models/profiles.py
      output_dim: 256                # optional: the worker refuses to start on another size
      key_registry_env: FEATURELOCK_KEY_REGISTRY   # env var naming the registry directory
      kek_env: FEATURELOCK_KEK                     # env var holding the KEK URI
      max_body_bytes: 8388608
      max_pixels: 16000000
      crafter_file: craft-beta3.pt   # scheme crafter only: the CraftNet, beside the model file
      beta: 3.0                      # scheme crafter only: must equal the file's beta
      disguise: {spec: {...}, key_fingerprint: "dk:..."}   # only for a model trained on
                                     # disguised images: PNG inputs only; never the key itself

`scheme: crafter` (Crafter, NDSS 2024) serves READABLE features: perturbed so that inverting
them yields a public-prior person, still usable without any key. It is not encryption; its
models hold no keys (like plaintext ones) but still authenticate every tenant.
Keys are never part of this section nor of the .mar: the worker finds them through the
environment at start. Every engine test-runs the model on a dummy batch of the profile at start
and refuses to serve on a mismatch (input size, output shape or `output_dim`, non-finite
output). `normalize: true` (configs written before profiles had `output`) forces `output: l2`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from featurelock.middleware.schemes import SCHEMES

from .errors import ServerConfigError

__all__ = ["ServingConfig", "PLAINTEXT", "CRAFTER", "KEYLESS", "BACKENDS", "DEFAULT_REGISTRY_ENV",
           "DEFAULT_KEK_ENV"]

PLAINTEXT = "plaintext"
CRAFTER = "crafter"
KEYLESS = (PLAINTEXT, CRAFTER)  # schemes that answer JSON floats anyone can read
BACKENDS = ("torchscript", "onnx")
DEFAULT_REGISTRY_ENV = "FEATURELOCK_KEY_REGISTRY"
DEFAULT_KEK_ENV = "FEATURELOCK_KEK"
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16_000_000


@dataclass(frozen=True)
class ServingConfig:
    scheme: str
    model: str
    version: str
    model_file: str
    backend: str
    profile: dict[str, Any] = field(repr=False)
    normalize: bool = False  # legacy; the profile's `output` decides
    output_dim: int | None = None
    key_registry_env: str = DEFAULT_REGISTRY_ENV
    kek_env: str = DEFAULT_KEK_ENV
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_pixels: int = DEFAULT_MAX_PIXELS
    crafter_file: str = ""
    beta: float | None = None
    disguise: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.scheme not in KEYLESS and self.scheme not in SCHEMES:
            raise ServerConfigError(f"featurelock.scheme must be one of "
                                    f"{', '.join([*SCHEMES, *KEYLESS])}, got {self.scheme!r}")
        if self.scheme == CRAFTER:
            if not isinstance(self.crafter_file, str) or not self.crafter_file:
                raise ServerConfigError("featurelock.crafter_file must name the crafting "
                                        "network for scheme crafter")
            if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) \
                    or self.beta < 0:
                raise ServerConfigError("featurelock.beta must be a number >= 0 for scheme "
                                        "crafter")
        elif self.crafter_file or self.beta is not None:
            raise ServerConfigError("featurelock.crafter_file and beta belong to scheme "
                                    "crafter only")
        if self.backend not in BACKENDS:
            raise ServerConfigError(f"featurelock.backend must be one of {', '.join(BACKENDS)}, "
                                    f"got {self.backend!r}")
        for name in ("model", "version", "model_file", "key_registry_env", "kek_env"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ServerConfigError(f"featurelock.{name} must be a non-empty string")
        if self.output_dim is not None and (type(self.output_dim) is not int
                                            or self.output_dim < 1):
            raise ServerConfigError("featurelock.output_dim must be a positive integer")
        for name in ("max_body_bytes", "max_pixels"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ServerConfigError(f"featurelock.{name} must be a positive integer")
        if self.disguise is not None:
            self._check_disguise()

    def _check_disguise(self) -> None:
        from featurelock.middleware.disguise import DisguiseSpec

        d = self.disguise
        if not isinstance(d, dict) or set(d) != {"spec", "key_fingerprint"}:
            raise ServerConfigError("featurelock.disguise must hold exactly spec and "
                                    "key_fingerprint (never the key)")
        fp = d["key_fingerprint"]
        if not isinstance(fp, str) or not fp.startswith("dk:") or len(fp) != 19:
            raise ServerConfigError("featurelock.disguise.key_fingerprint must be a dk:... "
                                    "fingerprint")
        try:
            spec = DisguiseSpec.from_dict(d["spec"] if isinstance(d["spec"], dict) else {})
        except (TypeError, ValueError) as exc:
            raise ServerConfigError(f"featurelock.disguise.spec: {exc}") from None
        profile = self.profile or {}
        if (spec.height, spec.width, spec.channels) != (profile.get("height"),
                                                        profile.get("width"), 3):
            raise ServerConfigError("featurelock.disguise.spec must match the input profile's "
                                    "height and width, 3 channels")

    @property
    def plaintext(self) -> bool:
        return self.scheme == PLAINTEXT

    @property
    def keyless(self) -> bool:
        """No keys are loaded: the model answers readable JSON features (plaintext, crafter)."""
        return self.scheme in KEYLESS

    def input_profile(self):
        from featurelock.models.profiles import InputProfile

        try:
            profile = InputProfile.from_dict(self.profile)
        except ValueError as exc:
            raise ServerConfigError(f"featurelock.profile: {exc}") from None
        return profile.with_(output="l2") if self.normalize else profile

    @classmethod
    def from_model_yaml(cls, model_yaml: dict[str, Any] | None) -> "ServingConfig":
        section = (model_yaml or {}).get("featurelock")
        if not isinstance(section, dict):
            raise ServerConfigError("model-config.yaml has no `featurelock:` section")
        known = set(cls.__dataclass_fields__)
        unknown = set(section) - known
        if unknown:
            raise ServerConfigError(f"unknown featurelock keys: {', '.join(sorted(unknown))}")
        try:
            values = dict(section)
            values["version"] = str(values.get("version", ""))
            return cls(**values)
        except TypeError as exc:
            raise ServerConfigError(f"featurelock section: {exc}") from None

    def to_yaml_section(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if self.scheme != CRAFTER:  # other schemes' sections stay as they were
            del out["crafter_file"], out["beta"]
        for name in ("normalize", "output_dim"):  # optional keys: only when set
            if out[name] in (False, None):
                del out[name]
        return out
