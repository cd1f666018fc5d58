"""featurelock.handlers."""
