"""`featurelock scan`: attack endpoints as a black box; verdict, JSON + HTML report, CI gate.

    featurelock scan --endpoint http://127.0.0.1:8080/predictions/reid-aes --tenant acme \\
        --token $TOKEN --inference-key $KEY --budget 600 --report scan-out
    featurelock scan --local plaintext --local shufflebits --local aes-256-gcm --report out

    featurelock scan --endpoint http://staging:8080/predictions/my-model --tenant acme \
        --model-file my_model.onnx --profile arcface-112 --dataset folder:my_people/ \
        --fail-if inconclusive --report scan-out

--endpoint may repeat (NAME=URL names a target; all endpoints share --tenant/--token/
--inference-key), --local adds in-process targets (the evaluator model plus a fresh keyset of
that scheme, or plaintext). --model-file is YOUR model (TorchScript or ONNX): the plaintext
control and the model that re-embeds reconstructions. Exit status: 0 pass; 1 a protected
target's best attacker beats chance by the margin (or, with --fail-if any-leak, any
target's); 2 the scan could not run as asked (bad arguments, unreachable endpoint, unloadable
data set); 3 (--fail-if inconclusive only) a protected target has a column no control showed
power for; 130 / 143 interrupted (Ctrl-C / SIGTERM): the partial report is kept.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from .errors import ScanError

__all__ = ["configure", "run"]

TOKEN_ENV = "FEATURELOCK_TOKEN"
INFERENCE_KEY_ENV = "FEATURELOCK_INFERENCE_KEY"
TWIN = "control"  # the target name of a plaintext twin given as --control URL
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}
DATASET_HELP = (
    "where the attacker's and the victims' images come from (identities disjoint): "
    "'synthetic' (generated pedestrians, 128x64), 'synthetic-faces' (generated faces, "
    "112x112; the default for a 112x112 model), 'market1501:PATH', or 'folder:PATH' = your own "
    "images: PATH/<identity>/*.jpg|png, one subfolder per person, optional "
    "PATH/cameras.csv (file,camera) and PATH/attributes.csv (identity,ATTR1,... or "
    "file,ATTR1,...); images are fitted to the model's input profile")


def _csv(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in text.split(",") if s.strip())
        bad = [s for s in items if s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return items
    return parse


def _csv_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 100,300,1000, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("name at least one budget")
    return values


def _local_spec(schemes: tuple[str, ...]):
    def parse(text: str) -> str:
        from .crafter_target import parse_crafter_spec

        try:
            if text in schemes or parse_crafter_spec(text) is not None:
                return text
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        raise argparse.ArgumentTypeError(f"choose from {', '.join(schemes)}, crafter:beta=B")
    return parse


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    from featurelock.middleware.schemes import SCHEMES

    from .attacks import attack_names
    from .representations import REPRESENTATIONS
    from .scan import FAIL_IF

    t = parser.add_argument_group("targets")
    t.add_argument("--endpoint", action="append", default=[], metavar="[NAME=]URL",
                   help="a TorchServe endpoint, http://host:port/predictions/MODEL (repeatable)")
    t.add_argument("--local", action="append", default=[], metavar="SCHEME",
                   type=_local_spec(("plaintext", *SCHEMES)),
                   help="an in-process target: the evaluator model + this scheme, or "
                        "crafter:beta=B (repeatable)")
    t.add_argument("--crafter-dir", default=None, metavar="DIR",
                   help="craft-beta<B>.pt files and prior.pt for crafter targets and the "
                        "gan-inversion attack (default: the packaged ones)")
    t.add_argument("--tenant", action="append", default=[],
                   help="X-Featurelock-Tenant: once for every endpoint, or once per --endpoint "
                        "in the same order")
    t.add_argument("--token", action="append", default=[],
                   help=f"X-Featurelock-Token, paired like --tenant (default: ${TOKEN_ENV})")
    t.add_argument("--inference-key", default=None,
                   help=f"TorchServe inference key for 'Authorization: Bearer' "
                        f"(default: ${INFERENCE_KEY_ENV})")
    t.add_argument("--control", default=None, metavar="NAME|URL",
                   help="the plaintext twin of your endpoint (same model, no encryption): a "
                        "target's NAME or its URL; every attack must show power on it "
                        "(default: the first plaintext target, else --model-file in process)")
    t.add_argument("--rate-limit", type=_positive(float), default=None, metavar="QPS",
                   help="at most this many queries per second per target")
    a = parser.add_argument_group("attack")
    a.add_argument("--dataset", default=None,
                   metavar="synthetic|synthetic-faces|market1501:PATH|folder:PATH",
                   help=DATASET_HELP)
    a.add_argument("--budget", type=_positive(int), default=600,
                   help="attacker queries per target (default 600)")
    a.add_argument("--victim-ids", type=_positive(int), default=80,
                   help="victim identities, at most (default 80)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--representations", type=_csv(REPRESENTATIONS), default=REPRESENTATIONS,
                   metavar=",".join(REPRESENTATIONS))
    a.add_argument("--attacks", type=_csv(attack_names()), default=None,
                   metavar=",".join(attack_names()),
                   help="default: all but basic-decoder and gan-inversion, which join when a "
                        "--local crafter target is scanned")
    a.add_argument("--budgets", type=_csv_ints, default=(), metavar="B1,B2,...",
                   help="also measure the learning attacks at these query budgets (each <= "
                        "--budget) and draw leakage vs budget into the report")
    a.add_argument("--decoder", choices=("ridge", "conv"), default="ridge",
                   help="linear closed-form decoder (fast) or the Ni et al. conv decoder")
    m = parser.add_argument_group("your model (the control and the evaluator)")
    m.add_argument("--model-file", default=None, metavar="PATH",
                   help="the model your endpoint serves, TorchScript (.pt/.ts) or ONNX (.onnx; "
                        "its input profile: --profile below), loaded without running pickled "
                        "code: the in-process plaintext control, "
                        "the model that re-embeds reconstructions and the white-box insider's "
                        "copy. Any output dimension")
    m.add_argument("--model", default=None,
                   help="instead of --model-file: a zoo model the endpoints serve (default "
                        "reid-compact; 'pixel': the transparent reference model). Without "
                        "--model-file, --model or a plaintext twin, a remote endpoint has no "
                        "control of its own model and nothing is called within chance")
    m.add_argument("--weights", default=None, help="weights file for --model")
    from featurelock.models.profile_cli import add_profile_arguments

    # --model-file's input profile (args.profile becomes an InputProfile, or None, in run).
    add_profile_arguments(parser.add_argument_group("input profile of --model-file"))
    g = parser.add_argument_group("verdict")
    g.add_argument("--fail-if", choices=FAIL_IF, default="protected-leak",
                   help="exit 1 when a protected target leaks (default), when any target "
                        "leaks, or never; 'inconclusive': also exit 3 when a protected target "
                        "has a column no control showed power for")
    g.add_argument("--margin", type=float, default=0.05,
                   help="how far above chance a score must be to count (default 0.05)")
    g.add_argument("--ssim-margin", type=float, default=0.005,
                   help="how far above the mean-image baseline an SSIM gain must be")
    g.add_argument("--psnr-margin-db", type=float, default=0.5)
    g.add_argument("--confidence", type=float, default=0.95,
                   help="family-wise confidence of the simultaneous intervals")
    parser.add_argument("--report", type=Path, required=True, metavar="DIR",
                        help="write report.json, report.txt (the table) and report.html here; "
                             "report.json and report.txt are rewritten after every attack "
                             "(marked partial until the scan ends)")
    parser.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write JUnit XML: a test case per target x column")
    parser.add_argument("--sarif", type=Path, default=None, metavar="FILE",
                        help="also write SARIF 2.1.0: a result per leaking column")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _endpoint(spec: str) -> tuple[str | None, str]:
    if "=" in spec and not spec.split("=", 1)[0].startswith("http"):
        name, url = spec.split("=", 1)
        return name, url
    return None, spec


def _paired(values: list, n: int, flag: str, default):
    if not values:
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"give {flag} once, or once per --endpoint ({n}), not {len(values)} times")
    return values


def build_targets(args: argparse.Namespace, evaluator) -> dict:
    from .targets import HttpTarget, local_targets, parse_endpoint

    targets: dict = {}
    key = args.inference_key or os.environ.get(INFERENCE_KEY_ENV)
    n = len(args.endpoint)
    tenants = _paired(args.tenant, n, "--tenant", None)
    tokens = _paired(args.token, n, "--token", os.environ.get(TOKEN_ENV))
    for spec, tenant, token in zip(args.endpoint, tenants, tokens):
        name, url = _endpoint(spec)
        name = name or parse_endpoint(url)[1]
        if name in targets:
            raise ValueError(f"two targets are named {name!r}; use NAME=URL")
        targets[name] = HttpTarget(url, tenant=tenant, token=token, inference_key=key,
                                   name=name)
    from .crafter_target import crafter_target, parse_crafter_spec
    from .targets import CachedEmbedder

    specs = list(dict.fromkeys(args.local))
    crafted = {s: parse_crafter_spec(s) for s in specs}
    embed = CachedEmbedder(evaluator.embed)  # the model runs once per image for all of them
    for name, target in local_targets([s for s in specs if crafted[s] is None], embed).items():
        label = f"local-{name}"
        target.name = label
        targets[label] = target
    for spec, beta in crafted.items():
        if beta is not None:
            target = crafter_target(beta, embed, getattr(args, "crafter_dir", None))
            targets[target.name] = target
    control = getattr(args, "control", None)
    if control and control.startswith(("http://", "https://")):
        if TWIN in targets:
            raise ValueError(f"a target is already named {TWIN!r}; name the twin with "
                             f"--endpoint NAME=URL --control NAME")
        targets[TWIN] = HttpTarget(control, tenant=tenants[0] if tenants else
                                   (args.tenant[0] if args.tenant else None),
                                   token=tokens[0] if tokens else
                                   (args.token[0] if args.token else os.environ.get(TOKEN_ENV)),
                                   inference_key=key, name=TWIN)
        args.control = TWIN
    if not targets:
        raise ValueError("name at least one target: --endpoint URL or --local SCHEME")
    return targets


def _write_ci_reports(report: dict, args: argparse.Namespace, report_json: Path) -> None:
    from .ci_reports import write_junit, write_sarif

    if args.junit is not None:
        write_junit(report, args.junit)
    if args.sarif is not None:
        write_sarif(report, args.sarif, artifact=Path(os.path.relpath(report_json)).as_posix())


def _same_model(args: argparse.Namespace) -> bool:
    """Whether the in-process evaluator is the model the targets serve: the user's file or a
    zoo model they named, or local targets only (built on it)."""
    return bool(args.model_file or args.model or not args.endpoint)


def _fitted_size(evaluator) -> tuple[int, int]:
    profile = getattr(evaluator, "profile", None)
    return (profile.height, profile.width) if profile is not None else (128, 64)


@contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt("SIGTERM") like Ctrl-C, so a killed scan keeps its
    partial report; the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    from .attacks import default_attacks
    from .crafter_target import parse_crafter_spec
    from .data import check_domain, default_dataset, load_dataset
    from .errors import ScanInterrupted
    from .reconstruction import DecoderConfig
    from .reference import default_evaluator
    from .report import summary_table, write_partial, write_reports
    from .scan import ScanConfig, run_scan

    try:
        from featurelock.models.errors import ProfileError
        from featurelock.models.profile_cli import profile_from_args

        args.profile = profile_from_args(args)  # InputProfile | None
    except (ValueError, ProfileError) as exc:
        print(f"featurelock scan: {exc}", file=sys.stderr)
        return 2
    try:
        config = ScanConfig(budget=args.budget, seed=args.seed,
                            representations=tuple(args.representations),
                            attacks=tuple(args.attacks or default_attacks(
                                readable=any(parse_crafter_spec(s) is not None
                                             for s in args.local))),
                            confidence=args.confidence,
                            margin=args.margin, ssim_margin=args.ssim_margin,
                            psnr_margin_db=args.psnr_margin_db,
                            rate_limit=args.rate_limit, decoder=DecoderConfig(kind=args.decoder),
                            fail_if=args.fail_if, budgets=tuple(args.budgets),
                            progress=not args.no_progress,
                            crafter_prior=str(Path(args.crafter_dir) / "prior.pt")
                            if getattr(args, "crafter_dir", None) else None)
        if args.model_file and args.model:
            raise ValueError("give --model-file or --model, not both")
        if args.profile and not args.model_file:
            raise ValueError("--profile describes --model-file's input; give --model-file")
        evaluator = default_evaluator(args.model or "reid-compact", args.weights, args.seed,
                                      model_file=args.model_file, profile=args.profile)
        size = _fitted_size(evaluator)
        dataset = args.dataset or default_dataset(getattr(evaluator, "profile", None))
        check_domain(dataset, getattr(evaluator, "profile", None), args.model or "the model")
        if dataset == "synthetic" and size != (128, 64):
            print(f"featurelock scan: warning: the synthetic pedestrians (128x64) are not your "
                  f"model's input ({size[0]}x{size[1]}); scan with your own images: "
                  f"--dataset folder:PATH", file=sys.stderr)
        targets = build_targets(args, evaluator)
        data = load_dataset(dataset, args.budget, args.seed, args.victim_ids, size=size)
    except (ValueError, TypeError) as exc:
        print(f"featurelock scan: {exc}", file=sys.stderr)
        return 2
    except ScanError as exc:
        print(f"featurelock scan: {exc}", file=sys.stderr)
        return 2
    try:
        with _sigterm_interrupts():
            result = run_scan(targets, config, data, evaluator, control=args.control,
                              same_model=_same_model(args),
                              checkpoint=lambda partial: write_partial(partial, args.report))
    except ScanInterrupted as exc:
        partial = exc.partial
        paths = write_reports(partial, args.report)
        print(summary_table(partial))
        why = partial.partial.get("interrupted") or "SIGINT"
        print(f"featurelock scan: interrupted ({why}); partial report: {paths['json']} "
              f"(+ {paths['table'].name}, {paths['html'].name})", file=sys.stderr)
        return EXIT_INTERRUPTED.get(why, 130)
    except ValueError as exc:  # e.g. a --control that names no plaintext target
        print(f"featurelock scan: {exc}", file=sys.stderr)
        return 2
    except ScanError as exc:
        print(f"featurelock scan: {exc}", file=sys.stderr)
        return 2
    finally:
        for target in targets.values():
            target.close()
    paths = write_reports(result, args.report)
    _write_ci_reports(result.to_dict(), args, paths["json"])
    print(summary_table(result))
    from .readable import is_readable
    from .tradeoff import tradeoff_points, tradeoff_table

    if any(is_readable(e["scheme"]) for e in result.targets.values()):
        print(tradeoff_table(tradeoff_points(result)))
    weak = [n for n, v in result.verdicts.items() if v["status"] == "INCONCLUSIVE"]
    if weak:
        print(f"note: {', '.join(weak)}: INCONCLUSIVE columns found nothing on the plaintext "
              "control either (or there is no control of your model): they are not safe, "
              "nothing was shown (raise --budget, or give --model-file)", file=sys.stderr)
    print(f"report: {paths['html']} (+ {paths['json'].name}, {paths['table'].name}); exit "
          f"status {result.exit_status()}")
    return result.exit_status()
