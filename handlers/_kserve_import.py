"""Import kserve without letting it read this process's command line.

kserve.model_server parses sys.argv when it is imported (argparse's parse_known_args, which
accepts abbreviations): `pytest --co ...` or kserve_server's own `--config FILE` would be taken
for its --configure_logging and end the process. Import kserve through this module.
"""

from __future__ import annotations

import sys

_argv = sys.argv[1:]
sys.argv[1:] = []
try:
    import kserve  # noqa: F401
finally:
    sys.argv[1:] = _argv
    del _argv

__all__ = ["kserve"]
