"""`featurelock serve`: a featurelock endpoint on TorchServe, Ray Serve or KServe, on loopback.

    featurelock serve --model-store STORE [--models a.mar ...] [--foreground]   # TorchServe
    featurelock serve --stop [--workdir DIR]
    featurelock serve --engine ray    --model-dir EXPORT --scheme S --name N [--replicas 2]
                      [--address auto]            # join a cluster started with `ray start`
    featurelock serve --engine kserve --model-dir EXPORT --scheme S --name N [--http-port 8080]

Ray and KServe run in the foreground until Ctrl-C. On every engine the key registry and KEK
reach the model through the environment (FEATURELOCK_KEY_REGISTRY, FEATURELOCK_KEK); on a Ray
cluster that is each node's environment where `ray start` ran.

Checks Java 11+ and pyyaml, writes config.properties into the work directory, starts
TorchServe, waits until every model has a READY worker and prints the endpoints. The key
registry and KEK reach the workers through the environment (FEATURELOCK_KEY_REGISTRY,
FEATURELOCK_KEK); the inference key is in <workdir>/key_file.json.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from .server import TorchServeProcess, stop_workdir
from .ts_config import DEFAULT_PORTS, Ports

__all__ = ["configure", "run"]


ENGINES = ("torchserve", "ray", "kserve")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="torchserve")
    parser.add_argument("--model-store", type=Path, help="directory of .mar files")
    parser.add_argument("--models", nargs="+", default=None,
                        help=".mar files in the store to load (default: all)")
    parser.add_argument("--workdir", type=Path, default=Path("featurelock-serve"),
                        help="config, key_file.json and logs (default: ./featurelock-serve)")
    parser.add_argument("--foreground", action="store_true",
                        help="stay attached; Ctrl-C stops the server")
    parser.add_argument("--stop", action="store_true", help="stop the server of --workdir")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    ray_kserve = parser.add_argument_group("ray and kserve")
    ray_kserve.add_argument("--model-dir", type=Path, help="export directory or model file")
    ray_kserve.add_argument("--scheme", help="encryption scheme of the tenants' primary keys")
    ray_kserve.add_argument("--name", help="model name (also bound into every envelope)")
    ray_kserve.add_argument("--version", default="1")
    ray_kserve.add_argument("--backend", choices=("torchscript", "onnx"), default=None)
    ray_kserve.add_argument("--http-port", type=int, default=8000)
    ray_kserve.add_argument("--gpu", action="store_true", help="one GPU per replica")
    ray_only = parser.add_argument_group("ray")
    ray_only.add_argument("--address", default=None,
                          help="Ray cluster to join (`auto`: the one `ray start` runs here); "
                               "default: a local single-node Ray on 127.0.0.1")
    ray_only.add_argument("--replicas", type=int, default=1)
    ray_only.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica")
    ray_only.add_argument("--max-batch-size", type=int, default=8)
    for name, default in (("inference", DEFAULT_PORTS.inference),
                          ("management", DEFAULT_PORTS.management),
                          ("metrics", DEFAULT_PORTS.metrics),
                          ("grpc-inference", DEFAULT_PORTS.grpc_inference),
                          ("grpc-management", DEFAULT_PORTS.grpc_management)):
        parser.add_argument(f"--{name}-port", type=int, default=default)


def run(args: argparse.Namespace) -> int:
    if args.engine != "torchserve":
        missing = [f"--{n.replace('_', '-')}" for n in ("model_dir", "scheme", "name")
                   if getattr(args, n) is None]
        if missing:
            raise SystemExit(f"featurelock serve --engine {args.engine}: {', '.join(missing)} "
                             "required")
        return _run_ray(args) if args.engine == "ray" else _run_kserve(args)
    if args.stop:
        stopped = stop_workdir(args.workdir)
        print("TorchServe stopped" if stopped else f"no server recorded in {args.workdir}")
        return 0
    if args.model_store is None:
        raise SystemExit("featurelock serve: --model-store is required")
    ports = Ports(args.inference_port, args.management_port, args.metrics_port,
                  args.grpc_inference_port, args.grpc_management_port)
    ts = TorchServeProcess(args.model_store, args.models, workdir=args.workdir.resolve(),
                           ports=ports, startup_timeout=args.startup_timeout)
    ts.start()
    print(f"TorchServe ready: {', '.join(ts.model_names())}\n"
          f"  inference   {ts.inference_url}/predictions/<model>\n"
          f"  management  {ts.management_url}   (loopback only)\n"
          f"  metrics     {ts.metrics_url}\n"
          f"  keys        {ts.workdir / 'key_file.json'} (send Authorization: Bearer <inference key>)\n"
          f"  logs        {ts.log_dir}")
    if not args.foreground:
        print(f"stop with: featurelock serve --stop --workdir {args.workdir}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while ts.proc is not None and ts.proc.poll() is None:
            time.sleep(1)
        return 1  # the server exited on its own
    except KeyboardInterrupt:
        return 0
    finally:
        ts.stop()


def _run_kserve(args: argparse.Namespace) -> int:
    from .kserve_server import serve_kserve

    print(f"KServe: {args.name} on http://127.0.0.1:{args.http_port} "
          f"(/v1/models/{args.name}:predict, /v2/models/{args.name}/infer, /metrics)")
    serve_kserve(args.model_dir, args.scheme, args.name, args.version, args.http_port,
                 backend=args.backend, use_gpu=args.gpu)
    return 0


def _run_ray(args: argparse.Namespace) -> int:
    from .ray_local import LocalRayCluster, loopback_only

    if args.address is None:
        loopback_only()  # before ray is imported
    from ray import serve

    from .ray_serve import RayModel, RayOptions, featurelock_app

    model = RayModel.from_export(args.model_dir, args.scheme, args.name, args.version,
                                 args.backend)
    options = RayOptions(num_replicas=args.replicas, num_cpus=args.num_cpus,
                         num_gpus=1.0 if args.gpu else 0.0, max_batch_size=args.max_batch_size)
    local = None
    if args.address is None:
        local = LocalRayCluster(1, cpus_per_node=max(args.num_cpus * args.replicas, 1.0),
                                http_port=args.http_port).start()
        url = local.deploy(model, options)
    else:
        import ray

        ray.init(address=args.address, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": args.http_port})
        route = f"/predictions/{args.name}"
        serve.run(featurelock_app(model, options), name=args.name, route_prefix=route)
        url = f"http://127.0.0.1:{args.http_port}{route}"
    print(f"Ray Serve: {args.name} ({args.replicas} replicas) at {url}; Ctrl-C stops it")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        if local is not None:
            local.stop()
        else:
            serve.delete(args.name)
