"""`featurelock serve`: TorchServe with featurelock's hardened config, on loopback.

    featurelock serve --model-store STORE [--models a.mar ...] [--foreground]
    featurelock serve --stop [--workdir DIR]

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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-store", type=Path, help="directory of .mar files")
    parser.add_argument("--models", nargs="+", default=None,
                        help=".mar files in the store to load (default: all)")
    parser.add_argument("--workdir", type=Path, default=Path("featurelock-serve"),
                        help="config, key_file.json and logs (default: ./featurelock-serve)")
    parser.add_argument("--foreground", action="store_true",
                        help="stay attached; Ctrl-C stops the server")
    parser.add_argument("--stop", action="store_true", help="stop the server of --workdir")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
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
