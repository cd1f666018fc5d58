"""featurelock load tests: locust users for every endpoint, and an A/B runner.

    python -m load_tests.run            # what `make loadtest` runs

Not part of the installed featurelock package (locust is an optional, heavy dependency); run
from the repository root.
"""
