"""The attack part of `featurelock demo`: a small scan, a printed table, a report.

    from featurelock.attack_harness.demo import run_attack_demo
    status = run_attack_demo(workdir / "scan")                      # in-process targets
    status = run_attack_demo(workdir / "scan", targets={"plaintext": HttpTarget(...), ...})

Sized for the tour: with the default budget (300 queries per target, 60 victim identities) a
scan of five targets takes about two to three minutes on two CPU cores.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, TextIO

from .targets import Target

__all__ = ["run_attack_demo", "run_endpoint_attack_demo", "DEMO_SCHEMES"]

DEMO_SCHEMES = ("plaintext", "shufflebits", "shufflebits-otp", "shufflebits-masked",
                "aes-256-gcm")


def run_attack_demo(report_dir: str | Path, targets: Mapping[str, Target] | None = None, *,
                    budget: int = 300, victim_ids: int = 60, model: str = "reid-compact",
                    weights: str | Path | None = None, seed: int = 0, progress: bool = True,
                    out: TextIO = sys.stdout) -> int:
    """Scan `targets` (default: in-process plaintext + every scheme over `model`), print the
    scheme x attack table and the report path; returns the scan's exit status."""
    import torch

    from .data import synthetic_data
    from .reference import default_evaluator
    from .report import summary_table, write_reports
    from .scan import ScanConfig, run_scan
    from .targets import local_targets

    torch.set_num_threads(min(2, torch.get_num_threads()))
    evaluator = default_evaluator(model, weights, seed)
    if targets is None:
        targets = local_targets(DEMO_SCHEMES, evaluator.embed)
    data = synthetic_data(budget, victim_ids, 4, seed)
    config = ScanConfig(budget=budget, seed=seed, progress=progress)
    print(f"attacking {len(targets)} targets: {budget} queries each, {victim_ids} victim "
          f"identities; evaluator {evaluator.description}", file=out)
    result = run_scan(targets, config, data, evaluator)
    paths = write_reports(result, report_dir)
    print(summary_table(result), file=out)
    print(f"scan report: {paths['html']}  ({result.seconds:.0f}s, exit status "
          f"{result.exit_status()})", file=out)
    return result.exit_status()


def run_endpoint_attack_demo(workdir: str | Path, *, budget: int = 300, victim_ids: int = 60,
                             out: TextIO = sys.stdout) -> int:
    """The tour's last act: TorchServe serves the default model as plaintext (the baseline) and
    under every scheme, the attacker scans each endpoint over HTTP, the server stops."""
    from featurelock.handlers.stack import Stack

    from .targets import HttpTarget

    workdir = Path(workdir)
    print("[scan] exporting the default model and packaging one endpoint per scheme", file=out)
    with Stack.build(workdir / "stack", DEMO_SCHEMES, tenant="attacker") as stack:
        ts = stack.ts
        print(f"[scan] TorchServe serves {', '.join(stack.endpoints)} at {ts.inference_url}; "
              "the attacker holds a tenant token, never keys", file=out)
        targets = {scheme: HttpTarget(f"{ts.inference_url}/predictions/{ep.model}",
                                      tenant=ep.tenant, token=ep.token,
                                      inference_key=ts.inference_key, name=scheme)
                   for scheme, ep in stack.endpoints.items()}
        try:
            status = run_attack_demo(workdir / "report", targets, budget=budget,
                                     victim_ids=victim_ids, out=out)
        finally:
            for target in targets.values():
                target.close()
    print("[scan] server stopped", file=out)
    return status
