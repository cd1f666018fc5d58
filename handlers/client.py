"""A small client for a featurelock endpoint, with decryption through FeatureReader.

    client = EndpointClient(ts.inference_url, "reid", tenant="acme", token=TOKEN,
                            inference_key=ts.inference_key, version="1")
    response = client.embed(png_bytes)                 # binary envelope
    features = client.read(response, acme_keyset)      # (1, D) float32, decrypted

`protocol="kserve-v1"` or `"kserve-v2"` talks to a KServe model server instead
(`featurelock.handlers.kserve_protocol`): `embed` sends the one image in that protocol and
answers a Response whose body is what TorchServe would have sent (the binary envelope, or a
plaintext model's JSON features), so `read` works unchanged.

Disguised-input models (Disguised-Nets): `EndpointClient(..., disguiser=keyset.disguiser(spec))`
and `client.embed_image(array)` disguise the uint8 image on the client and send it as lossless
PNG; the server never sees the plain image. The response stays encrypted as for any model.

Standard library only (http.client; Pillow for `embed_image`); one keep-alive connection per
client and thread.
"""

from __future__ import annotations

import base64
import http.client
import io
import json as _json
import threading
import urllib.parse
from dataclasses import dataclass, field

import numpy as np

from featurelock.middleware import Context, Disguiser, FeatureReader, Keyset
from featurelock.middleware.errors import DecryptionError

from .kserve_protocol import TORCHSERVE, client_request, client_result, request_path

__all__ = ["EndpointClient", "Response"]


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        return _json.loads(self.body)


class EndpointClient:
    """POSTs images to /predictions/<model> (or KServe's v1/v2 route, see `protocol`) with the
    tenant's credentials."""

    def __init__(self, url: str, model: str, tenant: str | None, token: str | None,
                 inference_key: str | None, *, version: str = "1", timeout: float = 30.0,
                 protocol: str = TORCHSERVE, disguiser: Disguiser | None = None) -> None:
        self.path = request_path(protocol, model)  # ValueError for an unknown protocol
        self.protocol = protocol
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"url must be http(s)://host:port, got {url!r}")
        self._https = parsed.scheme == "https"
        self._host, self._port = parsed.hostname, parsed.port
        self.model, self.version = model, version
        self.tenant, self.token, self.inference_key = tenant, token, inference_key
        self.timeout = timeout
        self.disguiser = disguiser
        self._local = threading.local()

    @property
    def context(self) -> Context:
        return Context(self.model, self.version, self.tenant or "")

    def embed(self, image: bytes, json: bool = False, *, accept_json: bool | None = None,
              headers: dict[str, str] | None = None) -> Response:
        """Send one image. json=True sends {"image": base64} and asks for the JSON envelope
        (TorchServe only: KServe's protocols are JSON both ways)."""
        if self.protocol != TORCHSERVE:
            return self._embed_kserve(image, json or bool(accept_json), headers)
        if json:
            body = _json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode()
            content_type = "application/json"
        else:
            body, content_type = image, "application/octet-stream"
        want_json = json if accept_json is None else accept_json
        all_headers = {"Content-Type": content_type,
                       "Accept": "application/json" if want_json else "application/octet-stream",
                       **(headers or {})}
        return self.post(self.path, body, self._credentials(all_headers))

    def embed_image(self, image: np.ndarray, **kwargs) -> Response:
        """Send one (H, W, 3) uint8 RGB image as PNG, disguised first when the client has a
        disguiser (its spec's size; DisguiseError for another)."""
        from PIL import Image

        if self.disguiser is not None:
            image = self.disguiser.disguise(image)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, "PNG")
        return self.embed(buf.getvalue(), **kwargs)

    def _credentials(self, headers: dict[str, str]) -> dict[str, str]:
        """The tenant's (and TorchServe's) credentials, then `headers` (which may override)."""
        out = {}
        if self.tenant is not None:
            out["X-Featurelock-Tenant"] = self.tenant
        if self.token is not None:
            out["X-Featurelock-Token"] = self.token
        if self.inference_key is not None:
            out["Authorization"] = f"Bearer {self.inference_key}"
        return {**out, **headers}

    def _embed_kserve(self, image: bytes, json: bool,
                      headers: dict[str, str] | None) -> Response:
        if json:
            raise ValueError("KServe protocols carry the binary envelope (base64 in JSON); "
                             "json/accept_json are for TorchServe")
        all_headers = {"Content-Type": "application/json", "Accept": "application/json",
                       **(headers or {})}
        resp = self.post(self.path, client_request(self.protocol, image),
                         self._credentials(all_headers))
        unwrapped = client_result(self.protocol, resp.body) if resp.ok else None
        if unwrapped is None:  # an error, or not a one-image answer: as received (read fails)
            return resp
        body, content_type = unwrapped
        return Response(resp.status, content_type, body, resp.headers)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        for attempt in (0, 1):  # one retry when a kept-alive connection was closed by the server
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self._drop()
                return Response(resp.status, resp.getheader("content-type", ""), data,
                                {k.lower(): v for k, v in resp.getheaders()})
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def read(self, response: Response, keyset: Keyset) -> np.ndarray:
        """Decrypt a successful response (binary or JSON envelope). DecryptionError otherwise."""
        if not response.ok:
            raise DecryptionError()
        return FeatureReader(keyset).read(response.body, self.context)

    def close(self) -> None:
        self._drop()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
