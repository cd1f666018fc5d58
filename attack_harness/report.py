"""Scan reports: report.json (every number) and report.html (self-contained: tables and image
grids as embedded PNGs — victim, reconstruction per representation, baseline — per target).

Also the plain-text summary table printed by the CLI and the demo.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from .scan import GATED, ScanResult

__all__ = ["write_reports", "summary_table", "png_data_uri"]

_LABEL = {"attributes": "attributes (mean bal. acc.)", "identity": "identity (rank-1)",
          "ssim_gain": "SSIM gain", "psnr_gain": "PSNR gain (dB)"}


def png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(best: dict | None) -> str:
    if not best:
        return "-"
    # "n.s.": not beyond chance + margin at the scan's simultaneous confidence. A high score
    # can still be n.s. with few victims; the report's intervals say how close it came.
    flag = "LEAK" if best["leak"] else "n.s."
    return (f"{best['score']:.3f} vs {best['chance']:.3f} [{best['representation']}] {flag}")


def summary_table(result: ScanResult) -> str:
    """scheme x attack: best attacker's score vs chance, representation, verdict."""
    cols = [a for a in GATED if any(a in v["best"] for v in result.verdicts.values())]
    rows = [["target", "scheme", *[_LABEL[c] for c in cols], "verdict"]]
    for name, v in result.verdicts.items():
        rows.append([name, v["scheme"], *[_cell(v["best"].get(c)) for c in cols],
                     "LEAKS" if v["leak"] else "within chance"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("score vs chance [best attacker's representation]; LEAK = its simultaneous "
                 "confidence interval clears chance + margin; n.s. = not significant")
    return "\n".join(lines)


def write_reports(result: ScanResult, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = result.to_dict()
    json_path = out / "report.json"
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default),
                         encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_html(result), encoding="utf-8")
    return {"json": json_path, "html": html_path}


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
font-size:13px;text-align:left}th{background:#f3f3f3}.leak{background:#fdd}.ok{background:#dfd}
img{image-rendering:pixelated;margin:1px}.grid td{text-align:center;border:none}
.muted{color:#777;font-size:12px}"""


def _html(result: ScanResult) -> str:
    e = html.escape
    cfg = result.config
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>featurelock scan</title>"
             f"<style>{_CSS}</style></head><body><h1>featurelock scan</h1>",
             f"<p>Exit status <b>{result.exit_status()}</b> (fail-if {e(cfg.fail_if)}). "
             f"Data: {e(result.data['description'])}. Evaluator (plaintext re-embedding and "
             f"white-box model): {e(result.evaluator)}. Budget {cfg.budget} queries per "
             f"target, seed {cfg.seed}, {result.seconds:.0f}s.</p>",
             f"<p class='muted'>A test leaks when the lower end of its simultaneous interval "
             f"(Bonferroni over {len(result.tests)} tests, each at level "
             f"{result.tests[0]['simultaneous_level'] if result.tests else cfg.confidence:.5f}) "
             f"exceeds chance + margin ({cfg.margin} absolute; {cfg.psnr_margin_db} dB for "
             f"PSNR). Intervals resample victim identities. A target's verdict is its best "
             f"attacker.</p>", "<h2>Verdicts</h2>", _verdict_table(result)]
    for name, entry in result.targets.items():
        parts.append(f"<h2>{e(name)} <span class='muted'>({e(entry['scheme'])}, "
                     f"{entry['queries_charged']} charged queries)</span></h2>")
        parts.append(_rep_table(result, name))
        parts.append(_attr_table(result, name))
        parts.append(_rmle_html(entry.get("rmle", {})))
        parts.append(_grid(result.images.get(name, {})))
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict_table(result: ScanResult) -> str:
    cols = [a for a in GATED if any(a in v["best"] for v in result.verdicts.values())]
    head = "".join(f"<th>{html.escape(_LABEL[c])}</th>" for c in cols)
    rows = []
    for name, v in result.verdicts.items():
        cells = []
        for c in cols:
            b = v["best"].get(c)
            if not b:
                cells.append("<td>-</td>")
                continue
            extra = ""
            if c == "attributes":
                extra = (f"<br><span class='muted'>worst attribute {b['worst_attribute']} "
                         f"[{b['worst_representation']}]: {b['worst_score']:.3f} vs "
                         f"{b['worst_chance']:.3f}</span>")
            cells.append(f"<td class='{'leak' if b['leak'] else 'ok'}'>{b['score']:.3f} vs "
                         f"chance {b['chance']:.3f}<br>[{b['representation']}] CI "
                         f"{b['simultaneous_ci'][0]:.3f}..{b['simultaneous_ci'][1]:.3f}"
                         f"{extra}</td>")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(v['scheme'])}</td>"
                    f"{''.join(cells)}<td class='{'leak' if v['leak'] else 'ok'}'>"
                    f"{'LEAKS' if v['leak'] else 'within chance'}</td></tr>")
    return (f"<table><tr><th>target</th><th>scheme</th>{head}<th>verdict</th></tr>"
            f"{''.join(rows)}</table>")


def _rep_table(result: ScanResult, name: str) -> str:
    rows = []
    for rep, r in result.targets[name]["representations"].items():
        tests = {(t["attack"], t["what"]): t for t in result.tests
                 if t["target"] == name and t["representation"] == rep}

        def fmt(key):
            t = tests.get(key)
            if not t:
                return "<td>-</td>"
            return (f"<td class='{'leak' if t['leak'] else 'ok'}'>{t['score']:.3f} "
                    f"<span class='muted'>(95% {t['ci'][0]:.3f}..{t['ci'][1]:.3f}; chance "
                    f"{t['chance']:.3f})</span></td>")
        rec = r.get("reconstruction") or {}
        ssim = (f"<td>{rec['ssim']:.3f} / {rec['ssim_baseline']:.3f}</td>" if rec else "<td>-</td>")
        psnr = (f"<td>{rec['psnr']:.2f} / {rec['psnr_baseline']:.2f}</td>" if rec else "<td>-</td>")
        rows.append(f"<tr><td>{rep}</td><td>{r['dim']}</td>{fmt(('attributes', 'mean'))}"
                    f"{fmt(('identity', 'rank1'))}{ssim}{psnr}{fmt(('ssim_gain', 'ssim_gain'))}"
                    f"{fmt(('psnr_gain', 'psnr_gain'))}</tr>")
    return ("<table><tr><th>representation</th><th>inputs</th><th>attributes (mean)</th>"
            "<th>identity rank-1</th><th>SSIM rec / baseline</th><th>PSNR rec / baseline</th>"
            "<th>SSIM gain</th><th>PSNR gain</th></tr>" + "".join(rows) + "</table>")


def _attr_table(result: ScanResult, name: str) -> str:
    reps = list(result.targets[name]["representations"])
    tests = [t for t in result.tests if t["target"] == name and t["attack"] == "attributes"
             and t["what"] != "mean"]
    if not tests:
        return ""
    attrs = list(dict.fromkeys(t["what"] for t in tests))
    by = {(t["what"], t["representation"]): t for t in tests}
    rows = []
    for a in attrs:
        cells = []
        for rep in reps:
            t = by.get((a, rep))
            cells.append("<td>-</td>" if not t else
                         f"<td class='{'leak' if t['leak'] else ''}'>{t['score']:.2f}</td>")
        chance = next(t["chance"] for t in tests if t["what"] == a)
        rows.append(f"<tr><td>{html.escape(a)}</td><td>{chance:.2f}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{r}</th>" for r in reps)
    return ("<details><summary>balanced accuracy per attribute</summary><table><tr>"
            f"<th>attribute</th><th>chance</th>{head}</tr>{''.join(rows)}</table></details>")


def _rmle_html(rmle: dict) -> str:
    if not rmle:
        return ""
    if rmle.get("status") != "ran":
        return (f"<p>White-box rMLE: {html.escape(rmle.get('status', ''))} — "
                f"{html.escape(rmle.get('reason', ''))}</p>")
    r1, c1 = rmle.get("rank1"), rmle.get("rank1_chance")
    rank = "-" if r1 is None else f"{r1:.2f} (chance {c1:.3f})"
    return (f"<p>White-box rMLE ({rmle['victims']} victims, {rmle['steps']} steps): SSIM "
            f"{rmle['ssim']:.3f} (baseline {rmle['ssim_baseline']:.3f}), PSNR "
            f"{rmle['psnr']:.2f} dB (baseline {rmle['psnr_baseline']:.2f}), rank-1 {rank}. "
            f"{html.escape(rmle['note'])}</p>")


def _grid(images: dict) -> str:
    victims = images.get("victims")
    if victims is None or len(victims) == 0:
        return ""
    rows = [("victim", victims)]
    rows += [(f"decoder [{rep}]", rec) for rep, rec in images.get("reconstructions", {}).items()]
    if images.get("rmle") is not None:
        rows.append(("white-box rMLE", images["rmle"]))
    if images.get("baseline") is not None:
        rows.append(("baseline (mean image)", np.repeat(images["baseline"][None], len(victims), 0)))
    out = ["<table class='grid'>"]
    for label, imgs in rows:
        cells = "".join(f"<td><img src='{png_data_uri(im)}' width='{im.shape[1]}' "
                        f"height='{im.shape[0]}'></td>" for im in imgs)
        out.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    out.append("</table>")
    return "".join(out)
