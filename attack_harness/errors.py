"""The attack harness's errors, under featurelock's one error tree.

    FeaturelockError                (featurelock.middleware.errors)
     └── ScanError                  a scan could not be run as asked
          ├── TargetError           an endpoint refused or garbled a query (status, no body text)
          ├── BudgetExceeded        the attacker asked for more queries than its budget
          ├── DatasetError          the data set named on the command line cannot be loaded
          └── ScanInterrupted       Ctrl-C or SIGTERM during a scan; holds the partial result
"""

from __future__ import annotations

from featurelock.middleware.errors import FeaturelockError

__all__ = ["ScanError", "TargetError", "BudgetExceeded", "DatasetError", "ScanInterrupted"]


class ScanError(FeaturelockError):
    """Base of the attack harness's errors."""


class TargetError(ScanError):
    """A target (endpoint) could not answer a query."""


class BudgetExceeded(ScanError):
    """More queries than the configured budget."""


class DatasetError(ScanError):
    """The data set cannot be loaded."""


class ScanInterrupted(ScanError):
    """The scan was interrupted; `partial` is the ScanResult of the attacks that finished."""

    def __init__(self, partial) -> None:
        super().__init__("scan interrupted")
        self.partial = partial
