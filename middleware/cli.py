"""The `featurelock` console script.

Subcommands live in the package that owns them and are imported only when run, so
`featurelock keys ...` works without torch, TorchServe or onnxruntime installed. A subcommand
module provides `configure(parser)` and `run(args) -> int`.

Bad input never prints a traceback: a FeaturelockError, OSError or ValueError becomes ONE line
`featurelock COMMAND: <message>` and exit status 1; anything else one line without its text
(set FEATURELOCK_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from .errors import FeaturelockError

DEBUG_ENV = "FEATURELOCK_DEBUG"

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "keys": ("featurelock.middleware.cli_keys", "create and rotate keysets (create|add|promote|disable|enable|destroy|list|export-public|import-public)"),
    "encrypt": ("featurelock.middleware.cli_crypt", "encrypt a .npy feature file into an envelope"),
    "decrypt": ("featurelock.middleware.cli_crypt", "decrypt an envelope back into a .npy file"),
    "rewrap": ("featurelock.middleware.cli_crypt", "re-encrypt envelopes under the keyset's current primary key"),
    "disguise": ("featurelock.middleware.cli_disguise", "disguise (or undisguise) a folder of images with a disguise keyset (PNG out)"),
    "scan-disguise": ("featurelock.attack_harness.disguise_cli", "attack disguised inputs (Disguised-Nets); verdicts + report"),
    "bench": ("featurelock.middleware.bench", "measure encryption throughput and latency of every scheme"),
    "train": ("featurelock.models.train_cli", "train the default re-ID model on synthetic pedestrians"),
    "crafter": ("featurelock.models.crafter.cli", "train Crafter's public prior, inverter and crafting networks"),
    "export": ("featurelock.export.cli", "export a model to TorchScript and ONNX with a parity report"),
    "package": ("featurelock.handlers.package_cli", "build a TorchServe .mar (no keys inside)"),
    "tenants": ("featurelock.handlers.tenants_cli", "add API consumers (tenants): keyset + access token"),
    "serve": ("featurelock.handlers.serve_cli", "serve models encrypted on TorchServe, Ray Serve or KServe (loopback)"),
    "templates": ("featurelock.attack_harness.templates_cli", "protected templates: `eval` judges every scheme (accuracy, unlinkability, inversion); `bench` times them"),
    "scan": ("featurelock.attack_harness.cli", "attack an endpoint as a black box; verdict + report"),
    "demo": ("featurelock.middleware.demo", "the product tour on the embedded defaults"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: featurelock COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `featurelock COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"featurelock: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"featurelock {name}: missing optional dependency ({exc.name}); "
              f"install featurelock[all]", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"featurelock {name}", description=help_)
    module.configure(parser, name) if _takes_name(module) else module.configure(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FeaturelockError, OSError, ValueError) as exc:  # bad files, keys or arguments
        return _fail(name, _message(exc))
    except Exception:  # a bug: its text may hold internals, so only the debug switch shows it
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        return _fail(name, f"unexpected internal error; set {DEBUG_ENV}=1 for the traceback")


def _fail(name: str, message: str) -> int:
    print(f"featurelock {name}: {message}", file=sys.stderr)
    return 1


def _message(exc: BaseException) -> str:
    """One line: an OSError as "reason: file", anything else its own text."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _takes_name(module) -> bool:
    # Modules that implement several subcommands (encrypt/decrypt/rewrap) get the name too.
    return getattr(module, "MULTI_COMMAND", False)


if __name__ == "__main__":
    raise SystemExit(main())
