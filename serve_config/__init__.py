"""featurelock.serve_config: TorchServe, Prometheus and metrics configuration shipped as package data."""
