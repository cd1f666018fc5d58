"""featurelock.attack_harness — attack an endpoint as a black box and report what leaks.

    targets = local_targets(["plaintext", "aes-256-gcm"], model.embed)     # or HttpTarget(...)
    result = run_scan(targets, ScanConfig(budget=600), synthetic_data(600), evaluator)
    write_reports(result, "scan-out"); result.exit_status()

Names are imported lazily (PEP 562): importing the package loads neither torch nor the data.
The console entry point is `featurelock scan` (featurelock.attack_harness.cli).
"""

from __future__ import annotations

from featurelock.middleware._lazy import lazy_exports

_EXPORTS = {
    "Target": "targets", "LocalTarget": "targets", "HttpTarget": "targets",
    "MeteredTarget": "targets", "CachedEmbedder": "targets", "local_targets": "targets",
    "REPRESENTATIONS": "representations", "represent": "representations",
    "ScanConfig": "scan", "ScanResult": "scan", "run_scan": "scan",
    "Attack": "attack", "Finding": "attack", "Outcome": "attack", "TargetView": "attack",
    "register": "attack", "ATTACKS": "attacks", "attack_names": "attacks",
    "AttackData": "data", "synthetic_data": "data", "load_dataset": "data",
    "ZooEvaluator": "reference", "PixelEmbedder": "reference",
    "write_reports": "report", "summary_table": "report",
    "run_attack_demo": "demo",
    "ssim": "metrics", "psnr": "metrics", "balanced_accuracy": "metrics",
    "ScanError": "errors", "TargetError": "errors", "BudgetExceeded": "errors",
    "DatasetError": "errors",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
