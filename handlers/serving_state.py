"""What a featurelock endpoint serves with, loaded as one immutable unit and kept live.

    ServingState(generation, tokens, protectors)   the registry's generation, the tenants'
                                                   token verifiers, a protector per tenant

`load_serving_state` builds it from one snapshot of the key registry (read under the
registry's shared lock, see `featurelock.middleware._transaction`); `watch_serving_state` keeps it current with a
`RegistryWatcher`, so `keys add|promote|disable|destroy` and `tenants add|remove` take effect
within about a second on every worker, without a restart. A registry that does not load
leaves the last good state in place.

No torch, no TorchServe: any host of the middleware can use it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from featurelock.middleware import FeatureProtector, KeyRegistry, kek_from_uri
from featurelock.middleware.errors import FeaturelockError
from featurelock.middleware.metrics import Recorder
from featurelock.middleware.registry import RegistrySnapshot, read_snapshot
from featurelock.middleware.registry_watch import RegistryWatcher
from featurelock.middleware.schemes import scheme_leak

from .errors import ServerConfigError
from .serving_config import ServingConfig
from .tenant_tokens import TenantTokens

__all__ = ["ServingState", "load_protectors", "load_serving_state", "watch_serving_state"]

log = logging.getLogger(__name__)

# A worker waits at most this long for a writer's commit; past it the reload fails, the last
# good state keeps serving and the next poll tries again.
READ_LOCK_TIMEOUT = 2.0


@dataclass(frozen=True)
class ServingState:
    """One consistent view of the registry. Never mutated: a change builds a new one."""

    generation: int
    tokens: TenantTokens = field(repr=False)
    protectors: Mapping[str, FeatureProtector] = field(repr=False)


def load_protectors(config: ServingConfig, registry_dir: str, tenants: list[str], *,
                    snapshot: RegistrySnapshot | None = None) -> dict[str, FeatureProtector]:
    """A protector per tenant; ServerConfigError unless every tenant has a usable keyset whose
    primary key uses the configured scheme. Logs a warning per tenant whose primary key's
    scheme measurably leaks (its keys were made with --allow-leaky-scheme). The keysets come
    from `snapshot` when given (one consistent read of the registry), else from a new one."""
    kek_uri = os.environ.get(config.kek_env)
    if not kek_uri:
        raise ServerConfigError(f"no key-encryption key: ${config.kek_env} is not set")
    try:
        keysets = KeyRegistry(registry_dir, kek_from_uri(kek_uri)).load_all(snapshot)
    except (FeaturelockError, ValueError, TypeError) as exc:
        raise ServerConfigError(f"cannot load the key registry: {exc}") from None
    missing = sorted(set(tenants) - set(keysets))
    if missing:
        raise ServerConfigError(f"tenants without a keyset: {', '.join(missing)}")
    if not tenants:
        raise ServerConfigError("no tenants: add one with `featurelock tenants add`")
    protectors = {}
    for tenant in tenants:
        primary = next(k for k in keysets[tenant].info() if k.primary)
        if primary.scheme != config.scheme:
            raise ServerConfigError(f"tenant {tenant!r}: primary key is {primary.scheme}, "
                                    f"the model is configured for {config.scheme}")
        leak = scheme_leak(primary.scheme)
        if leak:  # served on purpose (an attack baseline), but never silently
            log.warning("featurelock: tenant %s encrypts with %s, which measurably leaks: %s",
                        tenant, primary.scheme, leak)
        protectors[tenant] = FeatureProtector(keysets[tenant])
    return protectors


def load_serving_state(config: ServingConfig, registry_dir: str) -> ServingState:
    """The whole state, or ServerConfigError / KeyStoreError: never a partial one."""
    # One copy of every file under the registry's shared lock (milliseconds; no writer commits
    # meanwhile), parsed and unwrapped after it: generation, tokens and keysets always agree.
    snapshot = read_snapshot(registry_dir, timeout=READ_LOCK_TIMEOUT)
    tokens = TenantTokens.from_snapshot(snapshot)
    # Keyless models (plaintext baselines, crafter) authenticate tenants but hold no keys.
    protectors = {} if config.keyless else load_protectors(config, registry_dir,
                                                             tokens.tenants(), snapshot=snapshot)
    return ServingState(snapshot.generation, tokens, MappingProxyType(protectors))


def watch_serving_state(config: ServingConfig, registry_dir: str, *,
                        recorder: Recorder | None = None,
                        **watch: float) -> RegistryWatcher[ServingState]:
    """Load the state now (errors propagate: refuse to serve) and keep it live in a daemon
    thread. `watch`: RegistryWatcher's interval / retry_interval."""
    watcher = RegistryWatcher(registry_dir, lambda: load_serving_state(config, registry_dir),
                              recorder=recorder, **watch)
    log.info("featurelock: model %s serves key registry generation %d (%d tenants); "
             "watching for changes", config.model, watcher.current().generation,
             len(watcher.current().tokens.tenants()))
    return watcher.start()
