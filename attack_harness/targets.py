"""What the attacker talks to: a `Target` answers a batch of images with client responses.

    target.query(images)  # (N, H, W, 3) uint8 RGB -> [np.ndarray (plaintext) | bytes (envelope)]

* `LocalTarget`: a model from featurelock.models plus a FeatureProtector with the target's own
  keyset (or plaintext) — the same outputs as the server, in-process, for fast tests and scans.
* `HttpTarget`: a live TorchServe or KServe endpoint through
  featurelock.handlers.client.EndpointClient, with the tenant's headers and TorchServe's
  inference key.
* `MeteredTarget`: wraps either to enforce the attacker's query budget and a rate limit; clock
  and sleep are injectable.

Responses are exactly what a client receives. The harness never holds a target's keys:
LocalTarget keeps its keyset private and offers no way to read it.
"""

from __future__ import annotations

import io
import json
import time
import urllib.parse
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from featurelock.middleware import Context, Envelope, FeatureProtector, Keyset, SCHEMES
from featurelock.middleware.errors import DecryptionError

from .errors import BudgetExceeded, TargetError

__all__ = ["Target", "LocalTarget", "HttpTarget", "MeteredTarget", "PLAINTEXT", "png_bytes",
           "parse_endpoint", "endpoint_protocol"]

PLAINTEXT = "plaintext"


class Target(ABC):
    """An endpoint as a client sees it. `scheme` is "plaintext", a scheme name, or None until
    a first response reveals it (envelope headers name their scheme; that is public)."""

    name: str
    scheme: str | None = None

    @abstractmethod
    def query(self, images: np.ndarray) -> list[np.ndarray | bytes]:
        """One response per image: a float32 feature vector, or the envelope bytes."""

    def close(self) -> None:
        """Release connections; the default has none."""

    def _note_scheme(self, response: np.ndarray | bytes) -> None:
        if self.scheme is not None:
            return
        if isinstance(response, np.ndarray):
            self.scheme = PLAINTEXT
        else:
            try:
                self.scheme = Envelope.from_bytes(response).scheme
            except DecryptionError:
                self.scheme = "unknown"


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    return images


class LocalTarget(Target):
    """In-process endpoint: `embed(uint8 NHWC) -> (N, D) float32`, then protect each row.

    Each image gets its own envelope of shape (1, D), as the TorchServe handler answers one
    request per image.
    """

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], scheme: str = PLAINTEXT, *,
                 name: str | None = None, keyset: Keyset | None = None,
                 context: Context | None = None, shufflebits_seed: int | None = None) -> None:
        if not callable(embed):
            raise TypeError("embed must be callable (e.g. a zoo model's .embed)")
        if scheme != PLAINTEXT and scheme not in SCHEMES:
            raise ValueError(f"scheme must be 'plaintext' or one of {', '.join(SCHEMES)}, "
                             f"got {scheme!r}")
        if keyset is not None and scheme == PLAINTEXT:
            raise ValueError("a plaintext target takes no keyset")
        self._embed = embed
        self.name = name or scheme
        self.scheme = scheme
        self.context = context or Context("reid-compact", "1", "attack-harness")
        if scheme == PLAINTEXT:
            self._protector = None
        else:
            keyset = keyset or Keyset.generate(scheme, shufflebits_seed=shufflebits_seed,
                                               allow_leaky=True)
            self._protector = FeatureProtector(keyset)

    def query(self, images: np.ndarray) -> list[np.ndarray | bytes]:
        features = np.asarray(self._embed(_check_images(images)), dtype=np.float32)
        if self._protector is None:
            return [row.copy() for row in features]
        return [bytes(self._protector.protect(features[i:i + 1], self.context))
                for i in range(features.shape[0])]

    def __repr__(self) -> str:
        return f"LocalTarget(name={self.name!r}, scheme={self.scheme!r})"


class CachedEmbedder:
    """Memoises a deterministic embed function by image bytes, so several local targets that
    wrap the same model (plaintext + each scheme) run the network once per image."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray]) -> None:
        self._embed = embed
        self._cache: dict[bytes, np.ndarray] = {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        keys = [img.tobytes() for img in images]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            out = np.asarray(self._embed(images[todo]), dtype=np.float32)
            for i, row in zip(todo, out):
                self._cache[keys[i]] = row
        return np.stack([self._cache[k] for k in keys])


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of one (H, W, 3) uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def parse_endpoint(url: str) -> tuple[str, str]:
    """'http://host:port/predictions/<model>' -> ('http://host:port', '<model>'); KServe's
    '.../v1/models/<model>:predict' and '.../v2/models/<model>/infer' too."""
    base, model, _ = _parse_endpoint(url)
    return base, model


def endpoint_protocol(url: str) -> str:
    """The client protocol of an endpoint URL: torchserve, kserve-v1 or kserve-v2."""
    return _parse_endpoint(url)[2]


def _parse_endpoint(url: str) -> tuple[str, str, str]:
    parts = urllib.parse.urlsplit(url)
    seg = [s for s in parts.path.split("/") if s]
    model, protocol = None, None
    if len(seg) >= 2 and seg[0] == "predictions":  # (a version may follow)
        model, protocol = seg[1], "torchserve"
    elif len(seg) == 3 and seg[:2] == ["v1", "models"] and seg[2].endswith(":predict"):
        model, protocol = seg[2][: -len(":predict")], "kserve-v1"
    elif len(seg) == 4 and seg[:2] == ["v2", "models"] and seg[3] == "infer":
        model, protocol = seg[2], "kserve-v2"
    if parts.scheme not in ("http", "https") or not parts.netloc or not model:
        raise ValueError("endpoint must look like http://host:port/predictions/MODEL, "
                         ".../v1/models/MODEL:predict or .../v2/models/MODEL/infer, "
                         f"got {url!r}")
    return f"{parts.scheme}://{parts.netloc}", model, protocol


class HttpTarget(Target):
    """A live featurelock endpoint (binary envelopes, or plaintext JSON features): TorchServe's
    /predictions/<m>, or a KServe model server's v1 or v2 route (`parse_endpoint`)."""

    def __init__(self, url: str, *, tenant: str | None, token: str | None,
                 inference_key: str | None, name: str | None = None, version: str = "1",
                 timeout: float = 30.0, workers: int = 4) -> None:
        from featurelock.handlers.client import EndpointClient

        base, model, protocol = _parse_endpoint(url)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.url = url
        self.name = name or model
        self.scheme = None
        self._client = EndpointClient(base, model, tenant, token, inference_key,
                                      version=version, timeout=timeout, protocol=protocol)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flscan")

    def _one(self, image: np.ndarray) -> np.ndarray | bytes:
        try:
            resp = self._client.embed(png_bytes(image))
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot reach {self.url} ({type(exc).__name__})") from None
        if not resp.ok:
            raise TargetError(f"{self.name}: endpoint answered HTTP {resp.status}")
        if resp.content_type.startswith("application/json"):
            try:
                doc = json.loads(resp.body)
            except ValueError:
                raise TargetError(f"{self.name}: malformed JSON response") from None
            if isinstance(doc, dict) and "features" in doc:
                self._note_readable(doc.get("scheme"))
                return np.asarray(doc["features"], dtype=np.float32).reshape(-1)
            try:
                return Envelope.from_json(doc).to_bytes()
            except DecryptionError:
                raise TargetError(f"{self.name}: response is neither features nor an envelope") from None
        return bytes(resp.body)

    def _note_readable(self, scheme: object) -> None:
        """JSON features that name their scheme (crafter) are that scheme, not plaintext."""
        from .readable import READABLE

        if self.scheme is None and isinstance(scheme, str) and scheme in READABLE:
            self.scheme = scheme

    def query(self, images: np.ndarray) -> list[np.ndarray | bytes]:
        out = list(self._pool.map(self._one, _check_images(images)))
        if out:
            self._note_scheme(out[0])
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __repr__(self) -> str:
        return f"HttpTarget(name={self.name!r}, url={self.url!r})"


class MeteredTarget(Target):
    """Enforces a query budget (charged queries only) and a rate limit (all queries).

    Leaked victim outputs are obtained with charge=False: the threat model gives the attacker
    those outputs, it does not spend queries on them.
    """

    def __init__(self, target: Target, budget: int | None = None, rate_limit: float | None = None,
                 *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError(f"rate_limit must be > 0 queries/s, got {rate_limit}")
        self.target = target
        self.name = target.name
        self.budget = budget
        self.rate_limit = rate_limit
        self.used = 0
        self.total = 0
        self._clock, self._sleep = clock, sleep
        self._next = clock()

    @property
    def scheme(self) -> str | None:  # type: ignore[override]
        return self.target.scheme

    def query(self, images: np.ndarray, charge: bool = True) -> list[np.ndarray | bytes]:
        n = len(images)
        if charge and self.budget is not None and self.used + n > self.budget:
            raise BudgetExceeded(f"{self.name}: {self.used} + {n} queries exceed the budget of "
                                 f"{self.budget}")
        if self.rate_limit is not None:
            now = self._clock()
            if self._next > now:
                self._sleep(self._next - now)
            self._next = max(now, self._next) + n / self.rate_limit
        out = self.target.query(images)
        if len(out) != n:
            raise TargetError(f"{self.name}: {len(out)} responses for {n} images")
        if out:
            self.target._note_scheme(out[0])
        self.used += n if charge else 0
        self.total += n
        return out

    def close(self) -> None:
        self.target.close()


def local_targets(schemes: Sequence[str], embed: Callable[[np.ndarray], np.ndarray],
                  shufflebits_seed: int | None = None) -> dict[str, LocalTarget]:
    """One LocalTarget per scheme over one cached model (the network runs once per image)."""
    cached = CachedEmbedder(embed)
    return {s: LocalTarget(cached, s, shufflebits_seed=shufflebits_seed if s == "shufflebits"
                           else None) for s in schemes}
