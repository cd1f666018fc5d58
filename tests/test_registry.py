"""The key registry: one keyset per tenant; one tenant's key never opens another's features."""

from __future__ import annotations

import numpy as np
import pytest

from featurelock.middleware import (Context, DecryptionError, FeatureProtector, FeatureReader,
                                    KeyRegistry, KeyStoreError, TenantError, generate_kek_material,
                                    kek_from_uri)


@pytest.fixture
def kek(monkeypatch):
    monkeypatch.setenv("REGISTRY_TEST_KEK", generate_kek_material())
    return kek_from_uri("env:REGISTRY_TEST_KEK")


def test_tenants_get_separate_keysets(tmp_path, kek, rng):
    registry = KeyRegistry(tmp_path, kek)
    registry.create("acme", "shufflebits-masked")
    registry.create("globex")
    assert registry.tenants() == ["acme", "globex"]
    x = rng.standard_normal((2, 16)).astype(np.float32)
    acme_ctx = Context("reid", "1", "acme")
    env = FeatureProtector(registry.keyset("acme")).protect(x, acme_ctx)
    fresh = KeyRegistry(tmp_path, kek)  # as a server restarting would
    assert np.array_equal(FeatureReader(fresh.keyset("acme")).read(env, acme_ctx), x)
    with pytest.raises(DecryptionError):
        FeatureReader(fresh.keyset("globex")).read(env, acme_ctx)
    with pytest.raises(DecryptionError):
        FeatureReader(fresh.keyset("globex")).read(env, Context("reid", "1", "globex"))


def test_unknown_tenants_and_duplicates(tmp_path, kek):
    registry = KeyRegistry(tmp_path, kek)
    with pytest.raises(TenantError, match="no keyset"):
        registry.keyset("nobody")
    registry.create("acme")
    with pytest.raises(TenantError, match="already"):
        registry.create("acme")


@pytest.mark.parametrize("tenant", ["../etc/passwd", "", "a/b", ".hidden", "x" * 65, "ü"])
def test_tenant_ids_cannot_escape_the_directory(tmp_path, kek, tenant):
    with pytest.raises(ValueError):
        KeyRegistry(tmp_path, kek).create(tenant)


def test_load_all_fails_early_on_a_wrong_kek(tmp_path, kek):
    KeyRegistry(tmp_path, kek).create("acme")
    from featurelock.middleware import LocalKek
    import os

    with pytest.raises(KeyStoreError):
        KeyRegistry(tmp_path, LocalKek(os.urandom(32), "test:wrong")).load_all()


def test_save_refuses_to_drop_a_change_made_after_loading(tmp_path, kek):
    """Two API users load the same keyset; the second save would drop the first one's key."""
    KeyRegistry(tmp_path, kek).create("acme")
    first, second = KeyRegistry(tmp_path, kek), KeyRegistry(tmp_path, kek)
    a, b = first.keyset("acme"), second.keyset("acme")
    kept = a.add("aes-256-gcm")
    first.save("acme", a)
    b.add("aes-256-gcm")
    with pytest.raises(KeyStoreError, match="changed after it was loaded"):
        second.save("acme", b)
    assert kept in {k.key_id for k in KeyRegistry(tmp_path, kek).keyset("acme").info()}


def test_tokens_save_refuses_to_drop_a_change_made_after_loading(tmp_path):
    from featurelock.handlers.tenant_tokens import TenantTokens

    TenantTokens(tmp_path).save()
    first, second = TenantTokens.load(tmp_path), TenantTokens.load(tmp_path)
    first.issue("acme")
    first.save()
    second.remove("acme")
    second.issue("globex")
    with pytest.raises(KeyStoreError, match="changed after it was loaded"):
        second.save()
    assert TenantTokens.load(tmp_path).tenants() == ["acme"]
