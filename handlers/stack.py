"""A throwaway serving stack on loopback, for load tests, the demo and e2e tests: the exported
default model, fresh keys, one endpoint per scheme (plaintext baseline included), served by one
engine that publishes featurelock's metrics:

    torchserve   one .mar per scheme in one TorchServe
    ray          one Ray Serve application per scheme on a local Ray (`ray_local`)
    kserve       every model in one KServe model server (`kserve_server`)

    with Stack.build(workdir, engine="ray") as stack:   # starts the engine; stops it on exit
        stack.endpoints["aes-256-gcm"].model           # "ts-aes-256-gcm"
        stack.url, stack.protocol, stack.inference_key, stack.metrics_urls

Keys are generated per run under `workdir` (a file KEK, one registry per scheme) and are for
testing only.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

SCHEMES = ("aes-256-gcm", "shufflebits", "shufflebits-otp", "shufflebits-masked", "hpke-x25519",
           "hpke-mlkem768-x25519")
PLAINTEXT = "plaintext"
TENANT = "consumer"
ENGINES = ("torchserve", "ray", "kserve")


@dataclass(frozen=True)
class Endpoint:
    """One served model: what a locust user needs to call and check it."""

    scheme: str
    model: str            # TorchServe model name, also the name bound into envelopes
    version: str
    registry: str         # key registry directory of its tenant
    token: str
    tenant: str = TENANT
    consumer_keyset: str = ""  # sealed schemes: the consumer's private keyset file

    @property
    def plaintext(self) -> bool:
        return self.scheme == PLAINTEXT


def sample_images(n: int = 16, seed: int = 7) -> list[bytes]:
    """PNG bytes of synthetic pedestrians (128x64, the model's input size)."""
    from PIL import Image

    from featurelock.models.synthetic import make_pedestrians

    out = []
    for img in make_pedestrians(n, n_ids=n, seed=seed).images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _file_kek(directory: Path) -> str:
    from featurelock.middleware import create_kek_file

    path = directory / "kek"
    return f"file:{path}" if path.exists() else create_kek_file(path)


def _reg_env(scheme: str) -> str:
    return "FEATURELOCK_KEY_REGISTRY_" + scheme.replace("-", "_").upper()


@dataclass
class Stack:
    workdir: Path
    kek: str
    endpoints: dict[str, Endpoint]
    env: dict[str, str]
    store: Path
    batch_size: int = 8
    engine: str = "torchserve"
    max_batch_delay: int = 5  # ms
    replicas: int = 1         # per endpoint: TorchServe workers, or Ray replicas (one node each)
    direct_ingress: bool = False  # Ray only, one endpoint, one replica: no Serve proxy
    models: list = field(default_factory=list, repr=False)  # (ServingConfig, model file)
    ts: object = field(default=None, repr=False)       # the engines, while running
    ray: object = field(default=None, repr=False)
    kserve: object = field(default=None, repr=False)

    @classmethod
    def build(cls, workdir: str | Path, schemes: Sequence[str] = (PLAINTEXT, *SCHEMES), *,
              batch_size: int = 8, max_batch_delay: int = 5, tenant: str = TENANT,
              engine: str = "torchserve", replicas: int = 1) -> "Stack":
        """Export the default model, make keys and one endpoint per scheme under `workdir`."""
        import torch

        from featurelock.export.bundle import export_model
        from featurelock.handlers.packaging import build_mar, resolve_model, serving_config
        from featurelock.handlers.tenants_cli import add_tenant
        from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        root = Path(workdir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        export_dir = root / "export"
        if not (export_dir / "model.json").is_file():
            torch.manual_seed(0)
            model = load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file())
            export_model(model, export_dir, formats_=("torchscript",), batch_sizes=(1, 2))
        source = resolve_model(export_dir, "torchscript")
        kek = _file_kek(root)
        store = root / "store"
        endpoints, env, models = {}, {"FEATURELOCK_KEK": kek}, []
        for scheme in schemes:
            key_scheme = SCHEMES[0] if scheme == PLAINTEXT else scheme
            registry = root / f"reg-{scheme}"
            consumer = _consumer_keyset(root, scheme, tenant, kek)
            # The stack serves every scheme on purpose: leaky ones are the attack baselines.
            token = add_tenant(registry, tenant, key_scheme, kek, rotate_token=registry.exists(),
                               allow_leaky=True, public_key=f"{consumer}.pub" if consumer else None)
            env[_reg_env(scheme)] = str(registry)
            name = f"ts-{scheme}"
            serving = {"key_registry_env": _reg_env(scheme)}
            if engine == "torchserve":
                build_mar(source, scheme, name, "1", store, force=True, serving=serving,
                          batchSize=batch_size, maxBatchDelay=max_batch_delay,
                          minWorkers=replicas, maxWorkers=replicas)
            else:
                models.append((serving_config(source, scheme, name, "1", serving),
                               source.model_file))
            endpoints[scheme] = Endpoint(scheme, name, "1", str(registry), token, tenant,
                                         consumer or "")
        return cls(root, kek, endpoints, env, store, batch_size=batch_size, engine=engine,
                   max_batch_delay=max_batch_delay, replicas=replicas, models=models)

    # -- the running engine, whichever it is ------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the inference API (http://127.0.0.1:<port>)."""
        if self.engine == "ray":
            return self.ray.url
        return self.kserve.url if self.engine == "kserve" else self.ts.inference_url

    @property
    def protocol(self) -> str:
        """EndpointClient's protocol: TorchServe's and Ray's routes are /predictions/<model>."""
        return "kserve-v1" if self.engine == "kserve" else "torchserve"

    @property
    def inference_key(self) -> str | None:
        """TorchServe's own API key (Ray and KServe have none: the tenant token is the key)."""
        return self.ts.inference_key if self.engine == "torchserve" else None

    @property
    def metrics_urls(self) -> list[str]:
        """Every page that carries featurelock's series (on Ray: each node's export port)."""
        if self.engine == "ray":
            return self.ray.metrics_urls()
        return [self.kserve.metrics_url if self.engine == "kserve" else self.ts.metrics_url]

    def __enter__(self) -> "Stack":
        if self.engine == "ray":
            from featurelock.handlers.ray_local import LocalRayCluster

            # A node per replica; each endpoint's replicas share the machine's cores like
            # TorchServe's workers (Ray's CPU counts are for placement only).
            cpus = max(1, math.ceil(len(self.models) * 0.25))  # whole CPUs per raylet
            direct = None
            if self.direct_ingress:
                from featurelock.handlers.server import free_ports

                if self.replicas != 1 or len(self.models) != 1:
                    raise ValueError("direct ingress: one endpoint with one replica")
                direct = free_ports(1)[0]
            self.ray = LocalRayCluster(self.replicas, cpus_per_node=cpus, env=self.env,
                                       direct_ingress_port=direct).start()
            try:
                from featurelock.handlers.ray_serve import RayModel, RayOptions  # imports ray

                options = RayOptions(num_replicas=self.replicas, num_cpus=0.25,
                                     max_batch_size=self.batch_size,
                                     batch_wait_timeout_s=self.max_batch_delay / 1000)
                for config, path in self.models:
                    self.ray.deploy(RayModel(config, str(path)), options)
            except BaseException:
                self.ray.stop()
                raise
        elif self.engine == "kserve":
            from featurelock.handlers.kserve_server import KServeProcess

            self.kserve = KServeProcess(self.models, env=self.env, workdir=self.workdir / "kserve",
                                        startup_timeout=240)
            self.kserve.start()
        else:
            from featurelock.handlers.server import TorchServeProcess

            models = [f"{e.model}.mar" for e in self.endpoints.values()]
            self.ts = TorchServeProcess(self.store, models, env=self.env, startup_timeout=240)
            self.ts.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for engine in (self.ts, self.ray, self.kserve):
            if engine is not None:
                engine.stop()

    def keyset(self, scheme: str):
        return reader_keyset(self.endpoints[scheme], self.kek)


def reader_keyset(endpoint: Endpoint | dict, kek_uri: str):
    """The keyset that reads an endpoint's envelopes: the consumer's private keyset for a sealed
    scheme (the server holds only its public half), else the tenant's keyset in the registry."""
    from featurelock.middleware import KeyRegistry, kek_from_uri
    from featurelock.middleware.storage import load_keyset

    ep = endpoint if isinstance(endpoint, dict) else endpoint.__dict__
    kek = kek_from_uri(kek_uri)
    if ep.get("consumer_keyset"):
        return load_keyset(ep["consumer_keyset"], kek, ep["tenant"])
    return KeyRegistry(ep["registry"], kek).keyset(ep["tenant"])


def _consumer_keyset(root: Path, scheme: str, tenant: str, kek_uri: str) -> str | None:
    """For a sealed scheme, the consumer's keyset file (its public half beside it, `.pub`)."""
    from featurelock.middleware import Keyset, kek_from_uri
    from featurelock.middleware.schemes import SCHEMES as ALL_SCHEMES
    from featurelock.middleware.storage import save_keyset, save_public_keyset

    if scheme not in ALL_SCHEMES or not ALL_SCHEMES[scheme].sealed:
        return None
    path = root / f"consumer-{scheme}.keyset.json"
    if not path.exists():  # kept across builds in one workdir, like the registries
        keyset = Keyset.generate(scheme)
        save_keyset(path, keyset, kek_from_uri(kek_uri), tenant)
        save_public_keyset(f"{path}.pub", keyset)
    return str(path)
