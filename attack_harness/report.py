"""Scan reports: report.json (every number) and report.html (self-contained: verdicts beside
the plaintext control, every test with its interval, chance and detectable effect, the
leakage-vs-budget curves and image grids as embedded PNGs).

Also the plain-text summary table printed by the CLI and the demo.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from .scan import ScanResult
from .tradeoff import tradeoff_html

__all__ = ["write_reports", "write_partial", "summary_table", "png_data_uri", "curve_png",
           "image_grid", "TABLE_NAME"]

TABLE_NAME = "report.txt"  # the summary table, beside report.json

_LABEL = {"attributes": "attributes (mean bal. acc.)", "identity": "identity (rank-1)",
          "ssim_gain": "SSIM gain", "psnr_gain": "PSNR gain (dB)",
          "linkability": "linkability (rank-1)", "key recovery": "key recovery (words)",
          "equality": "equality", "template_inversion": "template inversion (@FMR1e-3)"}
_FLAG = {"leak": "LEAK", "within chance": "ok", "inconclusive": "no power"}
_STATUS_CLASS = {"LEAKS": "leak", "within chance": "ok", "INCONCLUSIVE": "nopower"}


def _label(column: str) -> str:
    return _LABEL.get(column, column)


def png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(col: dict | None) -> str:
    if not col:
        return "-"
    if col["status"] == "not applicable":
        return f"not applicable: {col['reason']}"
    b = col["best"]
    return f"{b['score']:.3f} vs {b['chance']:.3f} [{b['reading']}] {_FLAG[col['status']]}"


def summary_table(result: ScanResult) -> str:
    """target x column: the headline test's score vs chance, its reading, its status."""
    cols = result.columns()
    rows = [["target", "scheme", *[_label(c) for c in cols], "verdict"]]
    for name, v in result.verdicts.items():
        rows.append([name + (" *" if v["control"] else ""), v["scheme"],
                     *[_cell(v["columns"].get(c)) for c in cols], v["verdict"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("score vs chance [reading]; LEAK = the simultaneous interval clears chance + "
                 "margin; ok = no leak although the same test leaks on the plaintext control "
                 "(*); no power = the control's test did not leak either, so nothing is shown")
    if result.control_note:
        lines.append(f"NOTE: {result.control_note}")
    if result.partial is not None:
        p = result.partial
        lines.insert(0, f"PARTIAL REPORT ({p['attacks_done']} attack runs done"
                        f"{', interrupted by ' + p['interrupted'] if p.get('interrupted') else ''}"
                        f"; not run: {', '.join(p['attacks_pending']) or 'none'})")
    return "\n".join(lines)


def write_reports(result: ScanResult, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_partial(result, out)
    html_path = out / "report.html"
    _replace(html_path, _html(result))
    return {**paths, "html": html_path}


def write_partial(result: ScanResult, out_dir: str | Path) -> dict[str, Path]:
    """report.json and the summary table (report.txt): cheap enough to write after every
    attack, so an interrupted scan keeps what it has. Each file is replaced atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, table_path = out / "report.json", out / TABLE_NAME
    _replace(json_path, json.dumps(result.to_dict(), indent=1, allow_nan=False,
                                   default=_json_default))
    _replace(table_path, summary_table(result) + "\n")
    return {"json": json_path, "table": table_path}


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
font-size:13px;text-align:left}th{background:#f3f3f3}.leak{background:#fdd}.ok{background:#dfd}
.nopower{background:#ffe9b3}img{image-rendering:pixelated;margin:1px}
.grid td{text-align:center;border:none}.muted{color:#777;font-size:12px}"""
_CLASS = {"leak": "leak", "within chance": "ok", "inconclusive": "nopower"}


def _html(result: ScanResult) -> str:
    e = html.escape
    cfg = result.config
    per_target = {t["target"]: 0 for t in result.tests}
    for t in result.tests:
        per_target[t["target"]] += 1
    counts = ", ".join(f"{n} for {name}" for name, n in per_target.items()) or "none"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>featurelock scan</title>"
             f"<style>{_CSS}</style></head><body><h1>featurelock scan</h1>",
             f"<p>Exit status <b>{result.exit_status()}</b> (fail-if {e(cfg.fail_if)}). "
             f"Data: {e(result.data['description'])}. Evaluator (plaintext control, "
             f"re-embedding and white-box model): {e(result.evaluator)}. Budget "
             f"{cfg.budget} queries per target, seed {cfg.seed}, {result.seconds:.0f}s. "
             f"Plaintext control: <b>{e(result.control)}</b>.</p>",
             f"<p class='muted'>A test leaks when the lower end of its simultaneous interval "
             f"(Bonferroni over the target's own tests: {e(counts)}) exceeds "
             f"chance + margin ({cfg.margin} absolute; {cfg.ssim_margin} for SSIM gain; "
             f"{cfg.psnr_margin_db} dB for PSNR). "
             f"Intervals resample victim identities. A column is <b>within chance</b> only "
             f"where the same test leaks on the plaintext control; otherwise it is "
             f"<b>inconclusive</b> (the attack lacks power at this budget). 'detectable' is the "
             f"smallest score the test could have flagged.</p>",
             *([f"<p class='leak'><b>Partial report</b>: {result.partial['attacks_done']} attack "
                f"runs done; not run: {e(', '.join(result.partial['attacks_pending']))}</p>"]
               if result.partial is not None else []),
             *([f"<p class='nopower'><b>No control of your model.</b> {e(result.control_note)}"
                f"</p>"] if result.control_note else []),
             "<h2>Verdicts</h2>", _verdict_table(result), _curves_html(result),
             tradeoff_html(result)]
    for name, entry in result.targets.items():
        parts.append(f"<h2>{e(name)} <span class='muted'>({e(entry['scheme'])}, "
                     f"{entry['queries_charged']} charged queries"
                     f"{'; the plaintext control' if entry['control'] else ''})</span></h2>")
        parts.append(_decoded_html(entry.get("decoded") or {}))
        parts.append(_attacks_html(entry))
        parts.append(_tests_table(result, name))
        parts.append(_grid(result.images.get(name, {})))
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict_table(result: ScanResult) -> str:
    cols = result.columns()
    head = "".join(f"<th>{html.escape(_label(c))}</th>" for c in cols)
    rows = []
    for name, v in result.verdicts.items():
        cells = []
        for c in cols:
            col = v["columns"].get(c)
            if not col:
                cells.append("<td>-</td>")
                continue
            if col["status"] == "not applicable":
                cells.append(f"<td class='muted'>not applicable: "
                             f"{html.escape(col['reason'])}</td>")
                continue
            b, ctl = col["best"], col["control"]
            control = ("" if ctl is None or v["control"] else
                       f"<br><span class='muted'>control {ctl['score']:.3f} [{ctl['reading']}]"
                       f"</span>")
            unpowered = ("" if not col["unpowered"] or col["status"] == "leak" else
                         f"<br><span class='muted'>no power: "
                         f"{html.escape(', '.join(col['unpowered'][:6]))}</span>")
            cells.append(f"<td class='{_CLASS[col['status']]}'>{b['score']:.3f} vs chance "
                         f"{b['chance']:.3f} [{html.escape(b['reading'])}]<br>"
                         f"{html.escape(col['status'])}{control}{unpowered}</td>")
        cls = _STATUS_CLASS.get(v.get("status", ""), "leak" if v["leak"] else "nopower")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(v['scheme'])}</td>"
                    f"{''.join(cells)}<td class='{cls}'>{html.escape(v['verdict'])}</td></tr>")
    return (f"<table><tr><th>target</th><th>scheme</th>{head}<th>verdict</th></tr>"
            f"{''.join(rows)}</table>")


def _decoded_html(decoded: dict) -> str:
    """One line per decoding reading: how close its features are to the truth."""
    if not decoded:
        return ""
    items = "; ".join(f"[{html.escape(rep)}] cosine to the true features: mean "
                      f"{d['cosine_mean']:.3f}, median {d['cosine_median']:.3f}, signs "
                      f"{d['sign_agreement']:.3f}" for rep, d in decoded.items())
    return f"<p class='muted'>Decoded from ciphertext alone (scoring only): {items}</p>"


def _attacks_html(entry: dict) -> str:
    items = []
    for name, details in entry["attacks"].items():
        rest = {k: v for k, v in details.items() if k != "holds"}
        text = html.escape(json.dumps(rest, default=_json_default))
        items.append(f"<li><b>{html.escape(name)}</b> — holds {html.escape(details['holds'])}"
                     f"<br><span class='muted'>{text[:1500]}</span></li>")
    return "<details><summary>attacks and their threat models</summary><ul>" \
        + "".join(items) + "</ul></details>"


def _tests_table(result: ScanResult, name: str) -> str:
    tests = [t for t in result.tests if t["target"] == name]
    if not tests:
        return ""
    rows = [f"<tr class='{'leak' if t['leak'] else ''}'><td>{html.escape(t['column'])}</td>"
            f"<td>{html.escape(t['what'])}</td><td>{html.escape(t['reading'])}</td>"
            f"<td>{t['score']:.3f}</td><td>{t['ci'][0]:.3f}..{t['ci'][1]:.3f}</td>"
            f"<td>{t['chance']:.3f}</td><td>{t['detectable']:.3f}</td>"
            f"<td>{'LEAK' if t['leak'] else ''}</td></tr>" for t in tests]
    return ("<details><summary>every test</summary><table><tr><th>column</th><th>test</th>"
            "<th>reading</th><th>score</th><th>95% CI</th><th>chance</th><th>detectable</th>"
            "<th></th></tr>" + "".join(rows) + "</table></details>")


def image_grid(images: dict) -> str:
    """An HTML table of image rows: "victims" first, then one row per other key."""
    return _grid(images)


def _grid(images: dict) -> str:
    victims = images.get("victims")
    if victims is None or len(victims) == 0:
        return ""
    rows = [("victim", victims)] + [(k, v) for k, v in images.items() if k != "victims"]
    out = ["<table class='grid'>"]
    for label, imgs in rows:
        cells = "".join(f"<td><img src='{png_data_uri(im)}' width='{im.shape[1]}' "
                        f"height='{im.shape[0]}'></td>" for im in imgs)
        out.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


# ----------------------------------------------------------------------------- curves

_COLOURS = [(200, 30, 30), (30, 90, 200), (20, 150, 60), (160, 60, 180), (230, 130, 0),
            (90, 90, 90), (0, 150, 160)]


def curve_png(series: dict[str, list[tuple[float, float]]], chance: list[tuple[float, float]],
              title: str, size: tuple[int, int] = (360, 220)) -> np.ndarray:
    """A small line chart (log-scaled x) as an (H, W, 3) uint8 image: one line per series,
    chance dashed grey. Drawn with Pillow so the report needs no plotting library."""
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 40, 10, 22, 40
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    xs = sorted({x for pts in series.values() for x, _ in pts} | {x for x, _ in chance})
    ys = [y for pts in series.values() for _, y in pts] + [y for _, y in chance]
    if not xs:
        return np.asarray(img)
    lo, hi = min(0.0, *ys), max(1.0, *ys)
    lx0, lx1 = np.log(xs[0]), np.log(xs[-1]) if xs[-1] > xs[0] else np.log(xs[0]) + 1

    def px(x: float, y: float) -> tuple[float, float]:
        fx = (np.log(x) - lx0) / (lx1 - lx0)
        return (left + fx * (w - left - right), top + (1 - (y - lo) / (hi - lo)) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline=(180, 180, 180))
    d.text((left, 4), title, fill=(0, 0, 0))
    for y in (lo, (lo + hi) / 2, hi):
        d.text((2, px(xs[0], y)[1] - 6), f"{y:.2f}", fill=(90, 90, 90))
    for x in xs:
        d.text((px(x, lo)[0] - 10, h - bottom + 4), str(int(x)), fill=(90, 90, 90))
    if len(chance) > 1:
        pts = [px(x, y) for x, y in chance]
        for a, b in zip(pts, pts[1:]):
            for t in np.linspace(0, 1, 12)[::2]:
                d.line([(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t),
                        (a[0] + (b[0] - a[0]) * (t + 1 / 11), a[1] + (b[1] - a[1]) * (t + 1 / 11))],
                       fill=(150, 150, 150))
    for i, (label, pts) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        xy = [px(x, y) for x, y in pts]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for x, y in xy:
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        d.text((left + 4 + 105 * (i % 3), h - 24 + 11 * (i // 3)), label[:16], fill=colour)
    return np.asarray(img)


def _curves_html(result: ScanResult) -> str:
    if not any(result.curves.values()):
        return ""
    columns = list(dict.fromkeys(c for curve in result.curves.values() for c in curve))
    out = ["<h2>Leakage vs query budget</h2><p class='muted'>Each column's best headline test "
           "on the first b attacker queries; dashed: chance. The plaintext control is the "
           "curve an attack should reach when nothing protects.</p><table class='grid'><tr>"]
    for column in columns:
        series = {name: [(p["budget"], p["score"]) for p in curve.get(column, [])]
                  for name, curve in result.curves.items() if curve.get(column)}
        chance_pts = next(([(p["budget"], p["chance"]) for p in curve[column]]
                           for curve in result.curves.values() if curve.get(column)), [])
        chart = curve_png(series, chance_pts, _label(column))
        out.append(f"<td><img src='{png_data_uri(chart)}' width='{chart.shape[1]}' "
                   f"height='{chart.shape[0]}'></td>")
    out.append("</tr></table>")
    return "".join(out)
