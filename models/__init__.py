"""featurelock.models: synthetic data, model zoo, preprocessing and training.

Names are imported lazily (PEP 562), so `import featurelock.models` stays cheap and the
numpy-only parts (synthetic data, profiles) work without importing torch.

    load_model(name, path=None, pretrained=True)     zoo: "reid-compact", "face-compact",
                                                       "mobilenetv2-deepsort", "face"
    load_profile(name_or_path) -> InputProfile         built-in, zoo model name or .yaml/.json
    load_user_model(path, profile)                    a user's TorchScript/ONNX file, any output size
    decode_image(bytes, profile) / preprocess(uint8 NHWC, profile) -> float NCHW tensor
    make_splits(...) / make_pedestrians(...)          synthetic pedestrians with attributes
    make_face_splits(...) / make_faces(...)           synthetic 112x112 faces with attributes
    evaluate(model, query, gallery) -> {"rank1", "mAP"}
"""

from __future__ import annotations

from featurelock.middleware._lazy import lazy_exports

_EXPORTS = {
    "ATTRIBUTES": "synthetic", "UPPER_COLORS": "synthetic", "LOWER_COLORS": "synthetic",
    "PedestrianSet": "synthetic", "ReidSplits": "synthetic", "make_splits": "synthetic",
    "make_pedestrians": "synthetic",
    "FACE_ATTRIBUTES": "synthetic_faces", "FaceSet": "synthetic_faces",
    "make_face_splits": "synthetic_faces", "make_faces": "synthetic_faces",
    "FACE_COMPACT_112": "profiles",
    "InputProfile": "profiles", "REID_128x64": "profiles", "DEEPSORT_224": "profiles",
    "ARCFACE_112": "profiles", "load_profile": "profiles", "builtin_profiles": "profiles",
    "load_user_model": "user_model",
    "decode_image": "imaging", "decode_images": "imaging", "preprocess": "imaging",
    "EmbeddingModel": "embedder", "OnnxEmbedder": "embedder",
    "MODELS": "zoo", "DEFAULT_MODEL": "zoo", "ModelSpec": "zoo", "get_spec": "zoo",
    "load_model": "zoo",
    "reid_metrics": "evaluation", "evaluate": "evaluation",
    "load_market1501": "market1501",
    "ModelError": "errors", "ProfileError": "errors", "UnsafeModelFileError": "errors", "ImageDecodeError": "errors",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
