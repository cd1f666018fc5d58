"""A Ray cluster for featurelock on one machine, on loopback: tests, load tests, benchmarks and
`featurelock serve --engine ray` without --address.

    with LocalRayCluster(nodes=3, cpus_per_node=1) as cluster:     # head + 2 more raylets
        url = cluster.deploy(RayModel.from_export(...), RayOptions(num_replicas=3))
        # POST {url} ...  (http://127.0.0.1:<port>/predictions/<model>)

Every node is a real raylet with its own object store and workers (`ray.cluster_utils.Cluster`);
only the start differs from a real cluster (`ray start --head` / `ray start --address=...`, or
KubeRay). Ray's services bind to the node's IP: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, set
before ray is imported, makes that IP 127.0.0.1. Ray Serve's HTTP proxy runs on the head only,
on 127.0.0.1. `dashboard=True` also runs Ray's dashboard head (on a free 127.0.0.1 port): off
by default (a process less), it is what writes the Prometheus service-discovery file
(`discovery_file`) that serve_config/prometheus.yml's Ray job reads.

The key registry and KEK reach the replicas through the environment the raylets inherit from
this process (FEATURELOCK_KEY_REGISTRY, FEATURELOCK_KEK...: paths and URIs, no key bytes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

__all__ = ["LocalRayCluster", "loopback_only"]

_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> None:
    """Make the Ray imported from now on use 127.0.0.1 as this node's IP. Must run before the
    first `import ray` of the process (ray reads it at import)."""
    import sys

    os.environ[_LOOPBACK_ENV] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            raise RuntimeError("ray was imported before loopback_only(); set "
                               f"{_LOOPBACK_ENV}=0 in the environment instead")


class LocalRayCluster:
    """`nodes` raylets (the head included) of `cpus_per_node` CPUs each, and Ray Serve."""

    def __init__(self, nodes: int = 1, cpus_per_node: float = 1, *, http_port: int | None = None,
                 env: Mapping[str, str] | None = None, object_store_mb: int = 128,
                 dashboard: bool = False, direct_ingress_port: int | None = None) -> None:
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        self.nodes, self.cpus_per_node = nodes, cpus_per_node
        self.http_port = http_port
        self.env = dict(env or {})
        self.direct_ingress_port = direct_ingress_port
        if direct_ingress_port is not None:
            # Ray 2.60's experimental direct ingress: the replica serves HTTP itself, on ports
            # from this one up, and no request passes through Serve's proxy. One replica of one
            # application here; `url` is that replica's.
            self.env.update(RAY_SERVE_ENABLE_DIRECT_INGRESS="1",
                            RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=str(direct_ingress_port),
                            RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=str(direct_ingress_port + 1))
        self.object_store_bytes = object_store_mb * 1024 * 1024
        self.dashboard = dashboard
        self.cluster: Any = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.direct_ingress_port or self.http_port}"

    @property
    def discovery_file(self) -> Path:
        """The Prometheus file_sd file of this session: every alive node's metrics export
        port, rewritten every 5 s by the dashboard head (only with dashboard=True). Ray also
        links /tmp/ray/prom_metrics_service_discovery.json to the latest session's file."""
        import ray

        session = ray._private.worker._global_node.get_session_dir_path()
        return Path(session) / "prom_metrics_service_discovery.json"

    def start(self) -> "LocalRayCluster":
        loopback_only()
        for key, value in self.env.items():  # the raylets (and so the replicas) inherit it
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        import ray
        from ray import serve
        from ray.cluster_utils import Cluster

        from .server import free_ports

        if self.http_port is None:
            self.http_port = free_ports(1)[0]
        node = {"num_cpus": self.cpus_per_node, "node_ip_address": "127.0.0.1",
                "object_store_memory": self.object_store_bytes}
        # Workers report metrics to their node's agent every second (Ray's default: 10 s), so
        # a short benchmark's last run is on the export pages moments after it ends.
        head = {**node, "include_dashboard": self.dashboard,
                "_system_config": {"metrics_report_interval_ms": 1000}}
        if self.dashboard:  # port 0: a free one, so clusters side by side do not collide
            head.update(dashboard_host="127.0.0.1", dashboard_port=0)
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        for _ in range(self.nodes - 1):
            self.cluster.add_node(**node)
        ray.init(address=self.cluster.address, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        self.cluster.wait_for_nodes()
        serve.start(proxy_location="HeadOnly",
                    http_options={"host": "127.0.0.1", "port": self.http_port})
        return self

    def deploy(self, model: Any, options: Any = None) -> str:
        """Run `model`'s application (RayModel, RayOptions), wait until every replica is up
        (serve.run raises if they cannot start), and return its endpoint URL."""
        from ray import serve

        from .ray_serve import RayOptions, featurelock_app

        name = model.config.model
        route = f"/predictions/{name}"
        serve.run(featurelock_app(model, options or RayOptions()), name=name, route_prefix=route)
        return self.url + route

    @staticmethod
    def replica_nodes(deployment: str) -> dict[str, str]:
        """Actor name -> node id of every live replica of `deployment` (from the GCS actor
        table: works without Ray's dashboard)."""
        from ray._private import state

        return {a["Name"]: a["Address"]["NodeID"]
                for a in state.actors(actor_state_name="ALIVE").values()
                if a["ActorClassName"] == f"ServeReplica:{deployment}:{deployment}"}

    def metrics_urls(self) -> list[str]:
        """Each node's metrics export page (Ray's series, featurelock's among them)."""
        import ray

        return [f"http://127.0.0.1:{n['MetricsExportPort']}/metrics" for n in ray.nodes()
                if n["Alive"] and n.get("MetricsExportPort")]

    def node_ids(self) -> list[str]:
        import ray

        return [n["NodeID"] for n in ray.nodes() if n["Alive"]]

    def stop(self) -> None:
        import ray
        from ray import serve

        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            ray.shutdown()
            if self.cluster is not None:
                self.cluster.shutdown()
                self.cluster = None
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def __enter__(self) -> "LocalRayCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
