"""The privacy-utility picture of a scan: one point per target.

    utility  attribute utility retained: over the attributes whose test LEAKS on the plaintext
             control (the ones the plain features demonstrably carry), the mean of
             (score - chance) / (control's score - chance), balanced accuracy of heads trained
             on the target's answers (for a readable scheme that is its utility; for ciphertext
             it is what an attacker reads). Attributes the model does not carry are left out:
             their ratios are noise over a zero margin.
    privacy  identity: the best rank-1 over the identity attacks (adaptive decoder, basic
             decoder, GAN-prior inversion); linkability: the best rank-1 across cameras. Each
             twice: on the features as served, and (`*_inverted`) on the features an inverse
             attack recovered (`inversion`: the insider with the transform's file, or the
             outsider's learned map), drawn as hollow markers

Plaintext sits at utility 1 with full leakage, an encryption scheme at utility ~0 with chance
leakage; Crafter targets (one per beta) lie between, and where they lie is the measurement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .inversion import INVERTED, is_inverted

__all__ = ["tradeoff_points", "tradeoff_png", "tradeoff_html", "tradeoff_table"]

_SERIES = (("identity", (200, 30, 30)), ("linkability", (30, 90, 200)))


def _best(tests: list[dict], column: str, inverted: bool = False) -> dict | None:
    cands = [t for t in tests if t["column"] == column and t.get("summary")
             and is_inverted(t["reading"]) == inverted]
    return max(cands, key=lambda t: t["score"] - t["chance"], default=None)


def _attribute_mean(tests: list[dict]) -> dict | None:
    cands = [t for t in tests if t["column"] == "attributes" and t["what"] == "mean"]
    return max(cands, key=lambda t: t["score"], default=None)


def _retained(tests: list[dict], carried: dict[str, dict]) -> float | None:
    """Mean retained margin over the attributes the control carries (best reading each)."""
    ratios = []
    for what, ctl in carried.items():
        mine = [t for t in tests if t["column"] == "attributes" and t["what"] == what]
        if mine:
            best = max(t["score"] for t in mine)
            ratios.append((best - ctl["chance"]) / (ctl["score"] - ctl["chance"]))
    return float(np.mean(ratios)) if ratios else None


def tradeoff_points(result: Any) -> list[dict]:
    """Per target: scheme, beta (crafter), utility retained and the privacy scores."""
    by_target: dict[str, list[dict]] = {}
    for t in result.tests:
        by_target.setdefault(t["target"], []).append(t)
    carried: dict[str, dict] = {}
    for t in by_target.get(result.control, []):
        if t["column"] == "attributes" and t["what"] != "mean" and t["leak"] and \
                (t["what"] not in carried or t["score"] > carried[t["what"]]["score"]):
            carried[t["what"]] = t
    out = []
    for name, entry in result.targets.items():
        tests = by_target.get(name, [])
        attr_tests = entry.get("utility") or tests
        attr = _attribute_mean(attr_tests)
        point: dict[str, Any] = {"target": name, "scheme": entry["scheme"],
                                 "beta": _beta(name), "attributes": attr and attr["score"],
                                 "attributes_chance": attr and attr["chance"],
                                 "utility": _retained(attr_tests, carried),
                                 "utility_attributes": sorted(carried)}
        for column, _ in _SERIES:
            best = _best(tests, column)
            if best:
                point[column], point[f"{column}_chance"] = best["score"], best["chance"]
                point[f"{column}_attack"] = best["attack"]
            best = _best(tests, column, inverted=True)
            if best:
                point[f"{column}_inverted"] = best["score"]
                point[f"{column}_inverted_reading"] = best["reading"]
        cos = entry.get("attacks", {}).get("inversion", {})
        point["inverted_cosine"] = {r: cos[r]["mean"] for r in INVERTED if r in cos}
        out.append(point)
    return out


def _beta(name: str) -> float | None:
    tail = name.rsplit("beta", 1)
    try:
        return float(tail[1]) if len(tail) == 2 else None
    except ValueError:
        return None


def tradeoff_png(points: list[dict], size: tuple[int, int] = (420, 280)) -> np.ndarray:
    """x: attribute utility retained, y: rank-1 (identity red, linkability blue), dashed:
    the larger chance level; each point labelled by its target."""
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 40, 60, 22, 36
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    xs = [p["utility"] for p in points if p.get("utility") is not None]
    x_lo, x_hi = min(0.0, *xs) if xs else 0.0, max(1.0, *xs) if xs else 1.0

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_lo) / (x_hi - x_lo) * (w - left - right),
                top + (1 - y) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline=(180, 180, 180))
    d.text((left, 4), "privacy (rank-1) vs attribute utility retained", fill=(0, 0, 0))
    for y in (0.0, 0.5, 1.0):
        d.text((4, px(x_lo, y)[1] - 6), f"{y:.1f}", fill=(90, 90, 90))
    for x in (x_lo, (x_lo + x_hi) / 2, x_hi):
        d.text((px(x, 0)[0] - 8, h - bottom + 4), f"{x:.1f}", fill=(90, 90, 90))
    chance = max((p.get(f"{c}_chance") or 0.0 for p in points for c, _ in _SERIES), default=0.0)
    y0 = px(x_lo, chance)[1]
    for x in np.arange(left, w - right, 8):
        d.line([(x, y0), (x + 4, y0)], fill=(150, 150, 150))
    for i, (column, colour) in enumerate(_SERIES):
        pts = sorted((p["utility"], p[column], p) for p in points
                     if p.get("utility") is not None and p.get(column) is not None)
        for x, y, p in pts:
            cx, cy = px(x, y)
            d.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
            if i == 0:
                label = f"b={p['beta']:g}" if p["beta"] is not None else p["scheme"][:10]
                d.text((cx + 4, cy - 12), label, fill=(60, 60, 60))
            if p.get(f"{column}_inverted") is not None:  # the same point, features inverted
                ix, iy = px(x, p[f"{column}_inverted"])
                d.ellipse([ix - 4, iy - 4, ix + 4, iy + 4], outline=colour)
        d.text((left + 4 + 110 * i, h - 16), column, fill=colour)
    return np.asarray(img)


def tradeoff_table(points: list[dict]) -> str:
    """Plain-text rows for the console and the README."""
    carried = ", ".join(points[0]["utility_attributes"]) if points else ""
    rows = [f"utility: attribute margin retained on the attributes the plaintext control "
            f"carries ({carried or 'none'}); inverted: the same attacks on features an inverse "
            f"attack recovered",
            "target                      utility  attributes  identity (chance)  linkability "
            "(chance)  identity/linkability inverted"]
    for p in points:
        def f(v, fmt="{:.3f}"):
            return fmt.format(v) if v is not None else "-"
        rows.append(f"{p['target']:<27} {f(p.get('utility'), '{:.2f}'):>7}  "
                    f"{f(p.get('attributes')):>10}  "
                    f"{f(p.get('identity'))} ({f(p.get('identity_chance'))})     "
                    f"{f(p.get('linkability'))} ({f(p.get('linkability_chance'))})     "
                    f"{f(p.get('identity_inverted'))} / {f(p.get('linkability_inverted'))}")
    return "\n".join(rows)


def tradeoff_html(result: Any) -> str:
    """The report's section: shown when the scan has a readable (crafter) target."""
    from html import escape

    from .readable import is_readable
    from .report import png_data_uri

    if not any(is_readable(e["scheme"]) for e in result.targets.values()):
        return ""
    points = tradeoff_points(result)
    chart = tradeoff_png(points)
    return ("<h2>Privacy vs utility</h2><p class='muted'>One point per target. Utility: "
            "attribute balanced accuracy above chance, as a share of the plaintext control's; "
            "for a readable scheme it is reported as utility, never as a leak. Privacy: best "
            "identity rank-1 over the adaptive decoder, the basic decoder and GAN-prior "
            "inversion (red), linkability rank-1 (blue); hollow: the same attacks on the "
            "features an inverse attack recovered (readable schemes); dashed: chance.</p>"
            f"<img src='{png_data_uri(chart)}' width='{chart.shape[1]}' "
            f"height='{chart.shape[0]}'><pre>{escape(tradeoff_table(points))}</pre>")
