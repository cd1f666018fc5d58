"""The consumer gallery, the scheme contract and the unlinkability metric."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from featurelock.attack_harness.templates_eval import gaussian_data
from featurelock.attack_harness.unlinkability import d_sys, eer, tar_at_fmr
from featurelock.middleware.templates import (Gallery, generate_secret, make_template_scheme,
                                              template_schemes, threshold_at_fmr)

SCHEMES = sorted(template_schemes())


def _people():
    data = gaussian_data(n_ids=30, per_id=4, dim=64, n_aux=10, seed=3)
    labels = np.array([f"p{i}" for i in data.victim_ids])
    return data, labels


@pytest.mark.parametrize("name", SCHEMES)
def test_enrol_search_verify_save_load(name: str, tmp_path) -> None:
    data, labels = _people()
    scheme = make_template_scheme(name, generate_secret(), 64)
    first = data.victim_is_query  # one image per person enrolled, the rest probe
    gallery = Gallery(scheme)
    gallery.enrol(labels[first], data.victim_x[first])
    cal = gaussian_data(n_ids=30, per_id=4, dim=64, n_aux=10, seed=4)
    gallery.calibrate([str(i) for i in cal.victim_ids], cal.victim_x, fmr=1e-2)
    probes, truth = data.victim_x[~first], labels[~first]
    top = gallery.search(probes, k=3, threshold=-np.inf)
    assert all(len(t) == 3 for t in top)
    hits = np.mean([t[0][0] == want for t, want in zip(top, truth)])
    assert hits >= 0.3  # chance is 1/30; polyprotect (the weakest here) measures about 0.6
    ok, score = gallery.verify(truth[0], probes[:1])
    assert isinstance(ok, bool) and isinstance(score, float)

    path = tmp_path / "gallery.npz"
    gallery.save(path)
    loaded = Gallery.load(path, scheme)
    assert loaded.labels == gallery.labels and loaded.threshold == gallery.threshold
    if name != "sap":  # sap is randomised: the same probe gives a new template each time
        assert loaded.search(probes[:5], k=2, threshold=-np.inf) == gallery.search(
            probes[:5], k=2, threshold=-np.inf)
    with pytest.raises(ValueError, match="another key"):
        Gallery.load(path, make_template_scheme(name, generate_secret(), 64))
    with np.load(path, allow_pickle=False) as raw:  # no object arrays inside
        assert {k: raw[k].dtype.kind for k in raw.files}["meta"] == "u"


def test_gallery_refuses_other_parameters(tmp_path) -> None:
    secret = generate_secret()
    g = Gallery(make_template_scheme("iom", secret, 64, hashes=64))
    g.enrol(["a"], np.ones((1, 64)))
    g.save(tmp_path / "g.npz")
    with pytest.raises(ValueError, match="built with scheme"):
        Gallery.load(tmp_path / "g.npz", make_template_scheme("iom", secret, 64, hashes=128))


@pytest.mark.parametrize("name", SCHEMES)
def test_constructor_validates_and_hides_the_secret(name: str) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        make_template_scheme(name, b"short", 64)
    with pytest.raises(TypeError):
        make_template_scheme(name, "x" * 32, 64)
    secret = generate_secret()
    scheme = make_template_scheme(name, secret, 64)
    assert secret.hex() not in repr(scheme) and "secret" in repr(scheme)
    with pytest.raises(ValueError, match=r"\(N, 64\)"):
        scheme.protect(np.ones((2, 63)))
    with pytest.raises(TypeError):
        __import__("pickle").dumps(scheme)


def test_same_secret_same_parameters_new_secret_new_templates() -> None:
    x = gaussian_data(n_ids=5, per_id=2, dim=64, n_aux=4, seed=0).victim_x
    secret = generate_secret()
    a = make_template_scheme("biohash", secret, 64).protect(x)
    assert np.array_equal(a, make_template_scheme("biohash", secret, 64).protect(x))
    assert not np.array_equal(a, make_template_scheme("biohash", generate_secret(), 64).protect(x))


def test_threshold_and_rates_on_known_scores() -> None:
    impostor = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    t = threshold_at_fmr(impostor, 1e-2)
    assert np.mean(impostor > t) <= 1e-2 < np.mean(impostor >= t - 1e-9) + 1e-9
    assert tar_at_fmr(np.array([0.995, 0.5]), impostor, 1e-2) == 0.5
    assert eer(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0


def test_d_sys_bounds() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(0, 1, 5000)
    assert d_sys(same[:2500], same[2500:]) < 0.1  # one distribution: no evidence of linkage
    assert d_sys(rng.normal(10, 1, 2000), rng.normal(0, 1, 2000)) > 0.99  # disjoint


def test_templates_import_without_torch() -> None:
    code = ("import sys, featurelock.middleware.templates as t; t.template_schemes(); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_search_ranks_labels_by_their_best_template() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 64))
    scheme = make_template_scheme("projection", generate_secret(), 64)
    gallery = Gallery(scheme)
    gallery.enrol(["b", "a", "c", "a", "b"], x)
    probe = x[3:4] + 0.01 * rng.standard_normal((1, 64))  # nearest: "a"'s second template
    s = scheme.scores(scheme.protect(probe), scheme.protect(x))[0]
    want = sorted(((lab, max(s[i] for i, l in enumerate("bacab") if l == lab)) for lab in "abc"),
                  key=lambda item: -item[1])
    got = gallery.search(probe, k=3, threshold=-np.inf)[0]
    assert [lab for lab, _ in got] == [lab for lab, _ in want] and got[0][0] == "a"
    assert np.allclose([sc for _, sc in got], [sc for _, sc in want])
    assert gallery.search(probe, k=3, threshold=got[1][1])[0] == got[:1]
