"""`featurelock templates eval` end to end on Gaussian identities (no model)."""

from __future__ import annotations

import json

from featurelock.middleware.cli import main


def test_eval_writes_a_table_whose_attacks_find_the_weak_projection(tmp_path, capsys) -> None:
    out = tmp_path / "eval.json"
    assert main(["templates", "eval", "--data", "gaussian", "--schemes", "projection",
                 "--known-pairs", "128", "--out", str(out)]) == 0
    rows = {row["scheme"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"plaintext", "projection"}
    attacks = rows["projection"]["attacks"]
    chance = attacks["baseline_mean_guess"]
    for name in ("stolen_key_closed_form", "stolen_key_regression", "known_pairs_128"):
        # The leak: the recovered embedding IS the victim's, and passes as them.
        assert attacks[name]["cosine"] > 0.99 > chance["cosine"] + 0.5
        assert attacks[name]["system_accept"] >= 0.9 > chance["system_accept"]
    assert rows["plaintext"]["d_sys_across_keys"] > 0.5 > rows["projection"]["d_sys_across_keys"]
    assert "wrote" in capsys.readouterr().out


def test_a_bad_scheme_spec_is_one_line(tmp_path, capsys) -> None:
    assert main(["templates", "eval", "--data", "gaussian", "--schemes", "nope",
                 "--out", str(tmp_path / "x.json")]) == 1
    assert "unknown template scheme 'nope'" in capsys.readouterr().err


def test_bench_reports_every_scheme(capsys) -> None:
    from featurelock.middleware.templates import template_schemes

    assert main(["templates", "bench", "--dim", "16", "--gallery", "20"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["scheme"] for row in rows} == set(template_schemes())
    assert all(row["protect_us_per_embedding"] > 0 and row["bytes_per_template"] > 0
               for row in rows)
