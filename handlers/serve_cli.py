"""`featurelock serve`: a featurelock endpoint on TorchServe, Ray Serve or KServe, on loopback.

    featurelock serve --model-store STORE [--models a.mar ...] [--foreground]   # TorchServe
    featurelock serve --stop [--workdir DIR]
    featurelock serve [--engine torchserve|ray|kserve] --model-dir EXPORT_OR_FILE --scheme S
                      --name N [--profile NAME|FILE] [--output-dim D]
    featurelock serve --engine ray    ... [--replicas 2] [--address auto]   # join `ray start`
    featurelock serve --engine kserve ... [--http-port 8080]

One model, any engine: --model-dir is an export directory (its sidecar names the profile) or a
bare TorchScript/ONNX file with --profile. Before anything starts, the model is test-run on a
dummy batch of its profile (every .mar of --model-store too) and a mismatch (input size, output
shape or --output-dim, non-finite output) is refused with one line; every worker checks again.
On TorchServe, --model-dir is packaged into <workdir>/store first.

Ray and KServe run in the foreground until Ctrl-C. On every engine the key registry and KEK
reach the model through the environment (FEATURELOCK_KEY_REGISTRY, FEATURELOCK_KEK); on a Ray
cluster that is each node's environment where `ray start` ran.

TorchServe: checks Java 11+ and pyyaml, writes config.properties into the work directory,
starts TorchServe, waits until every model has a READY worker and prints the endpoints; the
inference key is in <workdir>/key_file.json.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from featurelock.models.profile_cli import add_profile_arguments, profile_from_args

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
    one = parser.add_argument_group("one model (every engine)")
    one.add_argument("--model-dir", type=Path, help="export directory or model file")
    one.add_argument("--scheme", help="encryption scheme of the tenants' primary keys")
    one.add_argument("--name", help="model name (also bound into every envelope)")
    one.add_argument("--version", default="1")
    one.add_argument("--backend", choices=("torchscript", "onnx"), default=None)
    one.add_argument("--output-dim", type=int, default=None, metavar="D",
                     help="refuse to start unless the model answers D-d vectors")
    add_profile_arguments(parser.add_argument_group(
        "input profile (required for a bare model file; an export directory has its own)"))
    ray_kserve = parser.add_argument_group("ray and kserve")
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
    if args.stop:
        stopped = stop_workdir(args.workdir)
        print("TorchServe stopped" if stopped else f"no server recorded in {args.workdir}")
        return 0
    source = _checked_source(args)
    if args.engine == "ray":
        return _run_ray(args, source)
    if args.engine == "kserve":
        return _run_kserve(args, source)
    if source is not None:
        store, models = _package_one(args, source), [f"{args.name}.mar"]
    elif args.model_store is None:
        raise SystemExit("featurelock serve: --model-store (or --model-dir, --scheme, --name) "
                         "is required")
    else:
        store, models = args.model_store, args.models
        from .packaging import check_mar

        for mar in models or sorted(p.name for p in Path(store).glob("*.mar")):
            check_mar(Path(store) / mar)  # the worker's own start check, before Java starts
    ports = Ports(args.inference_port, args.management_port, args.metrics_port,
                  args.grpc_inference_port, args.grpc_management_port)
    ts = TorchServeProcess(store, models, workdir=args.workdir.resolve(),
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


def _checked_source(args: argparse.Namespace):
    """The --model-dir model with its profile, test-run (ProfileError on a mismatch); None
    when serving a TorchServe model store."""
    profile = profile_from_args(args)
    if args.model_dir is None:
        if args.engine != "torchserve":
            raise SystemExit(f"featurelock serve --engine {args.engine}: --model-dir, --scheme, "
                             "--name required")
        if profile is not None or args.output_dim is not None:
            raise SystemExit("featurelock serve: --profile/--output-dim apply to --model-dir; a "
                             ".mar carries its own (featurelock package --profile)")
        return None
    missing = [f"--{n}" for n in ("scheme", "name") if getattr(args, n) is None]
    if missing:
        raise SystemExit(f"featurelock serve --model-dir: {', '.join(missing)} required")
    from .packaging import check_model, resolve_model

    source = resolve_model(args.model_dir, args.backend, profile, args.output_dim)
    dim = check_model(source)
    prof = source.input_profile()
    print(f"{source.model_file.name}: {source.backend}, profile {prof.name} "
          f"({prof.height}x{prof.width}, output {prof.output}), {dim}-d: test run passed")
    return source


def _package_one(args: argparse.Namespace, source) -> Path:
    from .packaging import build_mar

    store = args.workdir.resolve() / "store"
    build_mar(source, args.scheme, args.name, args.version, store, force=True)
    return store


def _run_kserve(args: argparse.Namespace, source) -> int:
    from .kserve_server import serve_kserve

    print(f"KServe: {args.name} on http://127.0.0.1:{args.http_port} "
          f"(/v1/models/{args.name}:predict, /v2/models/{args.name}/infer, /metrics)")
    serve_kserve(args.model_dir, args.scheme, args.name, args.version, args.http_port,
                 backend=source.backend, use_gpu=args.gpu, profile=source.input_profile(),
                 serving={"output_dim": source.output_dim} if source.output_dim else None)
    return 0


def _run_ray(args: argparse.Namespace, source) -> int:
    from .ray_local import LocalRayCluster, loopback_only

    if args.address is None:
        loopback_only()  # before ray is imported
    from ray import serve

    from .ray_serve import RayModel, RayOptions, featurelock_app

    model = RayModel.from_export(args.model_dir, args.scheme, args.name, args.version,
                                 source.backend, source.input_profile(),
                                 **({"output_dim": source.output_dim} if source.output_dim else {}))
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
