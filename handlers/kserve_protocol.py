"""KServe's wire formats for featurelock: one image per instance in, one envelope per instance out.

    v1   POST /v1/models/<m>:predict
         {"instances": [{"image": {"b64": "<base64 png/jpeg>"}}, ...]}      ({"image": "<b64>"} too)
      -> {"predictions": [{"envelope": "<base64 binary envelope>"}, ...]}
         plaintext models (baselines only): {"predictions": [{"features": [...]}, ...]}
    v2   POST /v2/models/<m>/infer  (Open Inference Protocol)
         {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [N], "data": ["<b64>", ...]}]}
      -> {"id": ..., "outputs": [{"name": "envelope", "datatype": "BYTES", "shape": [N],
                                  "data": ["<base64 envelope>", ...]}]}
         plaintext: {"name": "features", "datatype": "FP32", "shape": [N, D], "data": [...]}
    v2 binary tensors (the protocol's binary data extension), the image files unencoded:
         header Inference-Header-Content-Length: <J>; body = J bytes of JSON
         {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [N],
                      "parameters": {"binary_data_size": S}}]}
         then S bytes: per image a 4-byte little-endian length and the file's bytes.
         kserve 0.21 cannot take image bytes this way (it re-encodes BYTES as UTF-8 text), so
         kserve_model's gate parses them (`v2_binary_payloads`) and hands kserve the JSON form.

Server side, `v1_payloads` / `v2_payloads` turn a request into the pipeline's per-image payloads
({"body": {"image": "<b64>"}}: base64 checks and size limits stay in `request_parsing`), and
`v1_body` / `v2_body` build the answer from the pipeline's envelopes or feature rows. Client
side, `client_request` wraps one image and `client_result` unwraps one answer. Anything else in
a request is refused (BadInput), never guessed at.

Standard library only (the client imports it); the KServe host is `kserve_model`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Mapping, Sequence

from .errors import BadInput, MalformedRequest, PayloadTooLarge, UnsupportedMedia

__all__ = ["PROTOCOLS", "TORCHSERVE", "KSERVE_V1", "KSERVE_V2", "MAX_INSTANCES", "IMAGE_INPUT",
           "ENVELOPE_OUTPUT", "FEATURES_OUTPUT", "v1_payloads", "v2_payloads", "v1_body",
           "v2_body", "request_path", "client_request", "client_result", "BINARY_HEADER",
           "v2_binary_images", "v2_binary_as_json", "client_binary_request"]

TORCHSERVE, KSERVE_V1, KSERVE_V2 = "torchserve", "kserve-v1", "kserve-v2"
PROTOCOLS = (TORCHSERVE, KSERVE_V1, KSERVE_V2)
MAX_INSTANCES = 64  # images per KServe request: one request is one model batch
IMAGE_INPUT, ENVELOPE_OUTPUT, FEATURES_OUTPUT = "image", "envelope", "features"
BINARY_HEADER = "inference-header-content-length"


def _payload(b64: Any) -> dict[str, Any]:
    if not isinstance(b64, str):
        raise BadInput("image must be a base64 string")
    return {"body": {"image": b64}}


def _count(n: int) -> None:
    if n == 0:
        raise BadInput("no instances")
    if n > MAX_INSTANCES:
        raise PayloadTooLarge(f"more than {MAX_INSTANCES} instances")


# -- server: requests ------------------------------------------------------------------------
def v1_payloads(body: Any) -> list[dict[str, Any]]:
    """The pipeline payloads of a v1 body (the JSON document kserve decoded; raw bytes when the
    client sent a non-JSON content type)."""
    if isinstance(body, (bytes, bytearray, str)):
        raise UnsupportedMedia("v1 takes JSON {\"instances\": [...]}")
    if not isinstance(body, Mapping) or set(body) != {"instances"} \
            or not isinstance(body["instances"], list):
        raise BadInput('v1 body must be {"instances": [...]}')
    instances = body["instances"]
    _count(len(instances))
    out = []
    for instance in instances:
        if not isinstance(instance, Mapping) or set(instance) != {"image"}:
            raise BadInput('each instance must be {"image": {"b64": ...}}')
        image = instance["image"]
        if isinstance(image, Mapping):
            if set(image) != {"b64"}:
                raise BadInput('image must be {"b64": "<base64>"}')
            image = image["b64"]
        out.append(_payload(image))
    return out


def v2_payloads(request: Any) -> list[dict[str, Any]]:
    """The pipeline payloads of a v2 request (kserve's InferRequest: `.inputs`, each with
    `.name`, `.datatype`, `.shape`, `.data`)."""
    inputs = getattr(request, "inputs", None)
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadInput("v2 request must have exactly one input")
    tensor = inputs[0]
    if tensor.name != IMAGE_INPUT or tensor.datatype != "BYTES":
        raise BadInput('the input must be {"name": "image", "datatype": "BYTES"}')
    data = tensor.data
    if not isinstance(data, list):
        raise BadInput("input data must be a list of base64 strings")
    _count(len(data))
    if list(tensor.shape) != [len(data)]:
        raise BadInput("input shape must be [number of images]")
    return [_payload(item) for item in data]


def v2_binary_images(body: bytes, json_length: str | None) -> tuple[list[bytes], str | None]:
    """The image files of a v2 binary-tensor request and its id. MalformedRequest for any
    deviation from the layout in the module docstring (never an exception of another kind)."""
    if json_length is None or not json_length.isdigit() or not 0 < int(json_length) <= len(body):
        raise MalformedRequest("Inference-Header-Content-Length must be the JSON header's size")
    split = int(json_length)
    try:
        doc = json.loads(body[:split])
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest("the JSON header is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) \
            or len(doc["inputs"]) != 1 or not isinstance(doc["inputs"][0], dict):
        raise MalformedRequest("exactly one input")
    tensor = doc["inputs"][0]
    params = tensor.get("parameters")
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    shape = tensor.get("shape")
    if tensor.get("name") != IMAGE_INPUT or tensor.get("datatype") != "BYTES" \
            or "data" in tensor or type(size) is not int or size != len(body) - split \
            or not isinstance(shape, list) or len(shape) != 1 or type(shape[0]) is not int:
        raise MalformedRequest('one BYTES input "image" of shape [N] with binary_data_size')
    _count(shape[0])
    images, at, data = [], split, memoryview(body)
    while at < len(body):
        if at + 4 > len(body):
            raise MalformedRequest("an element's length runs past the body")
        n = int.from_bytes(data[at: at + 4], "little")
        if at + 4 + n > len(body):
            raise MalformedRequest("an element runs past the body")
        images.append(bytes(data[at + 4: at + 4 + n]))
        at += 4 + n
    if len(images) != shape[0]:
        raise MalformedRequest("shape [N] must count the elements")
    request_id = doc.get("id")
    return images, request_id if isinstance(request_id, str) else None


def v2_binary_as_json(images: Sequence[bytes], request_id: str | None) -> bytes:
    """The same request in the JSON form kserve parses."""
    doc: dict = {"inputs": [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [len(images)],
                             "data": [_b64(i) for i in images]}]}
    if request_id:
        doc["id"] = request_id
    return json.dumps(doc).encode()


# -- server: responses -----------------------------------------------------------------------
def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def v1_body(results: Sequence[bytes | bytearray | Sequence[float]], plaintext: bool) -> dict:
    """`results`: one binary envelope per instance, or (plaintext) one feature row."""
    key = FEATURES_OUTPUT if plaintext else ENVELOPE_OUTPUT
    return {"predictions": [{key: list(r) if plaintext else _b64(r)} for r in results]}


def v2_body(results: Sequence[bytes | bytearray | Sequence[float]], plaintext: bool, *,
            model: str, version: str, request_id: str | None) -> dict:
    """An InferenceResponse document. The id is never empty: kserve 0.21 answers 500 to an
    InferResponse without one, so a request without an id gets a fresh one."""
    if plaintext:
        dim = len(results[0]) if results else 0
        output = {"name": FEATURES_OUTPUT, "datatype": "FP32", "shape": [len(results), dim],
                  "data": [x for row in results for x in row]}
    else:
        output = {"name": ENVELOPE_OUTPUT, "datatype": "BYTES", "shape": [len(results)],
                  "data": [_b64(r) for r in results]}
    return {"id": request_id or uuid.uuid4().hex, "model_name": model, "model_version": version,
            "outputs": [output]}


# -- client ----------------------------------------------------------------------------------
def request_path(protocol: str, model: str) -> str:
    if protocol == KSERVE_V1:
        return f"/v1/models/{model}:predict"
    if protocol == KSERVE_V2:
        return f"/v2/models/{model}/infer"
    if protocol == TORCHSERVE:
        return f"/predictions/{model}"
    raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def client_request(protocol: str, image: bytes) -> bytes:
    """The JSON body carrying one image in a KServe protocol."""
    b64 = _b64(image)
    if protocol == KSERVE_V1:
        doc: dict = {"instances": [{"image": {"b64": b64}}]}
    elif protocol == KSERVE_V2:
        doc = {"inputs": [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [1],
                           "data": [b64]}]}
    else:
        raise ValueError(f"not a KServe protocol: {protocol!r}")
    return json.dumps(doc).encode()


def client_binary_request(images: Sequence[bytes], request_id: str | None = None
                          ) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a v2 binary-tensor request carrying `images` unencoded."""
    blob = b"".join(len(i).to_bytes(4, "little") + bytes(i) for i in images)
    doc: dict = {"inputs": [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [len(images)],
                             "parameters": {"binary_data_size": len(blob)}}]}
    if request_id:
        doc["id"] = request_id
    header = json.dumps(doc).encode()
    return header + blob, {"Inference-Header-Content-Length": str(len(header)),
                           "Content-Type": "application/octet-stream"}


def client_result(protocol: str, body: bytes) -> tuple[bytes, str] | None:
    """(body, content type) as a TorchServe endpoint would answer one image: the binary envelope,
    or for a plaintext model JSON {"features": [[...]], "shape": [1, D]}. None if `body` is not
    a one-image answer of `protocol`."""
    try:
        doc = json.loads(body)
        if protocol == KSERVE_V1:
            (item,) = doc["predictions"]
            if set(item) == {ENVELOPE_OUTPUT}:
                return _unb64(item[ENVELOPE_OUTPUT]), "application/octet-stream"
            row = item[FEATURES_OUTPUT]
        elif protocol == KSERVE_V2:
            (output,) = doc["outputs"]
            if output["name"] == ENVELOPE_OUTPUT:
                (value,) = output["data"]
                return _unb64(value), "application/octet-stream"
            if output["name"] != FEATURES_OUTPUT:
                return None
            row = output["data"]
        else:
            return None
        if not isinstance(row, list) or not all(isinstance(x, (int, float)) for x in row):
            return None
        return (json.dumps({"features": [row], "shape": [1, len(row)]}).encode(),
                "application/json")
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not a base64 string")
    return base64.b64decode(value, validate=True)
