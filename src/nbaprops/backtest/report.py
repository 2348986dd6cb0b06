"""A self-contained HTML report of a backtest: inline SVG plots, no scripts, no external files.

Plots: reliability diagram of P(win), hit rate by edge bucket with 95% intervals against break-even, MAE by
player tier against the line's own, cumulative profit in units. A table of the headline metrics follows.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
W, H, PAD = 520, 300, 44


def _sx(x: float, lo: float, hi: float) -> float:
    return PAD + (x - lo) / ((hi - lo) or 1) * (W - 2 * PAD)


def _sy(y: float, lo: float, hi: float) -> float:
    return H - PAD - (y - lo) / ((hi - lo) or 1) * (H - 2 * PAD)


def _frame(title: str, xlabel: str, ylabel: str, xr: tuple[float, float], yr: tuple[float, float], body: str,
           legend: list[tuple[str, str]], xticks: list[tuple[float, str]] | None = None) -> str:
    ticks = []
    for k in range(5):
        y = yr[0] + (yr[1] - yr[0]) * k / 4
        ticks.append(f'<text x="{PAD - 4}" y="{_sy(y, *yr) + 4:.1f}" text-anchor="end" font-size="10">{y:.2f}</text>'
                     f'<line x1="{PAD}" x2="{W - PAD}" y1="{_sy(y, *yr):.1f}" y2="{_sy(y, *yr):.1f}" stroke="#eee"/>')
    for x, label in xticks or [(xr[0] + (xr[1] - xr[0]) * k / 4, f"{xr[0] + (xr[1] - xr[0]) * k / 4:.2f}")
                               for k in range(5)]:
        ticks.append(f'<text x="{_sx(x, *xr):.1f}" y="{H - PAD + 14}" text-anchor="middle" font-size="10">'
                     f"{html.escape(label)}</text>")
    leg = "".join(f'<rect x="{W - PAD - 130}" y="{PAD + 14 * i - 9}" width="10" height="10" fill="{c}"/>'
                  f'<text x="{W - PAD - 115}" y="{PAD + 14 * i}" font-size="10">{html.escape(n)}</text>'
                  for i, (n, c) in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">'
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{html.escape(title)}</text>'
            f'{"".join(ticks)}<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#333"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>'
            f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{html.escape(xlabel)}</text>'
            f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle" font-size="11">'
            f"{html.escape(ylabel)}</text>{body}{leg}</svg>")


def reliability_svg(metrics: list[dict[str, Any]]) -> str:
    body = [f'<line x1="{_sx(0, 0, 1)}" y1="{_sy(0, 0, 1)}" x2="{_sx(1, 0, 1)}" y2="{_sy(1, 0, 1)}" '
            'stroke="#999" stroke-dasharray="4"/>']
    legend = []
    for i, m in enumerate(metrics):
        pts = m["reliability"]
        if not pts:
            continue
        c = COLORS[i % len(COLORS)]
        legend.append((m["system_id"], c))
        body.append('<polyline fill="none" stroke="{}" points="{}"/>'.format(
            c, " ".join(f"{_sx(p['p_mean'], 0, 1):.1f},{_sy(p['won_rate'], 0, 1):.1f}" for p in pts)))
        body += [f'<circle cx="{_sx(p["p_mean"], 0, 1):.1f}" cy="{_sy(p["won_rate"], 0, 1):.1f}" '
                 f'r="{2 + min(6, math.log10(p["n"] + 1)):.1f}" fill="{c}"/>' for p in pts]
    return _frame("Reliability of P(win)", "predicted P(win)", "observed win rate", (0, 1), (0, 1),
                  "".join(body), legend)


def edge_svg(metrics: list[dict[str, Any]]) -> str:
    buckets = metrics[0]["by_edge"] if metrics else []
    nb = len(buckets)
    body, legend = [], []
    be = [b["breakeven"] for m in metrics for b in m["by_edge"] if b["breakeven"]]
    if be:
        y = sum(be) / len(be)
        body.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{_sy(y, 0.3, 0.8):.1f}" y2="{_sy(y, 0.3, 0.8):.1f}" '
                    f'stroke="#d62728" stroke-dasharray="4"/><text x="{PAD + 4}" y="{_sy(y, 0.3, 0.8) - 4:.1f}" '
                    f'font-size="10" fill="#d62728">break-even {y:.3f}</text>')
    for i, m in enumerate(metrics):
        c = COLORS[i % len(COLORS)]
        legend.append((m["system_id"], c))
        for k, b in enumerate(m["by_edge"]):
            if b["hit_rate"] is None:
                continue
            x = k + 0.2 + 0.6 * (i + 0.5) / max(len(metrics), 1)
            lo, hi = b["hit_rate_ci"]
            body.append(f'<line x1="{_sx(x, 0, nb):.1f}" x2="{_sx(x, 0, nb):.1f}" y1="{_sy(max(lo, 0.3), 0.3, 0.8):.1f}" '
                        f'y2="{_sy(min(hi, 0.8), 0.3, 0.8):.1f}" stroke="{c}"/>'
                        f'<circle cx="{_sx(x, 0, nb):.1f}" cy="{_sy(min(max(b["hit_rate"], 0.3), 0.8), 0.3, 0.8):.1f}" r="3" fill="{c}"/>')
    ticks = [(k + 0.5, f"{b['edge_from']:g}-{b['edge_to']:g}" if b["edge_to"] else f"{b['edge_from']:g}+")
             for k, b in enumerate(buckets)]
    return _frame("Hit rate by edge (95% Wilson)", "|predicted - line|", "hit rate", (0, nb), (0.3, 0.8),
                  "".join(body), legend, ticks)


def tier_svg(metrics: list[dict[str, Any]]) -> str:
    tiers = metrics[0]["by_tier"] if metrics else []
    if not tiers:
        return ""
    top = max([t["mae"] for m in metrics for t in m["by_tier"]] + [t["line_mae"] for t in tiers]) * 1.1
    nb = len(tiers)
    group = len(metrics) + 1
    body, legend = [], [("line", "#555")]
    for k, t in enumerate(tiers):
        for j, (name, value, c) in enumerate([("line", t["line_mae"], "#555")] + [
                (m["system_id"], m["by_tier"][k]["mae"], COLORS[i % len(COLORS)])
                for i, m in enumerate(metrics) if len(m["by_tier"]) > k]):
            x0 = _sx(k + 0.1 + 0.8 * j / group, 0, nb)
            x1 = _sx(k + 0.1 + 0.8 * (j + 1) / group, 0, nb)
            body.append(f'<rect x="{x0:.1f}" y="{_sy(value, 0, top):.1f}" width="{x1 - x0 - 1:.1f}" '
                        f'height="{_sy(0, 0, top) - _sy(value, 0, top):.1f}" fill="{c}"><title>{html.escape(name)}: '
                        f"{value:.2f}</title></rect>")
    legend += [(m["system_id"], COLORS[i % len(COLORS)]) for i, m in enumerate(metrics)]
    ticks = [(k + 0.5, f"{t['line_from']:g}-{t['line_to']:g}") for k, t in enumerate(tiers)]
    return _frame("MAE by player tier (line quartiles)", "line", "MAE", (0, nb), (0, top), "".join(body), legend, ticks)


def profit_svg(curves: dict[str, list[tuple[str, float]]]) -> str:
    if not curves:  # no bets at all: say so in the plot's place rather than dropping it
        note = (f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="12">no bets: see the calibration '
                "notes above</text>")
        return _frame("Cumulative profit (units, 1 per bet)", "game day", "units", (0, 1), (-1, 1), note, [],
                      [])
    n = max(len(v) for v in curves.values())
    values = [y for v in curves.values() for _, y in v] + [0.0]
    lo, hi = min(values), max(values)
    body, legend = [f'<line x1="{PAD}" x2="{W - PAD}" y1="{_sy(0, lo, hi):.1f}" y2="{_sy(0, lo, hi):.1f}" stroke="#999"/>'], []
    for i, (sid, series) in enumerate(sorted(curves.items())):
        c = COLORS[i % len(COLORS)]
        legend.append((sid, c))
        body.append('<polyline fill="none" stroke="{}" points="{}"/>'.format(
            c, " ".join(f"{_sx(k, 0, max(n - 1, 1)):.1f},{_sy(y, lo, hi):.1f}" for k, (_, y) in enumerate(series))))
    first = next(iter(curves.values()))
    ticks = [(0.0, first[0][0]), (float(max(n - 1, 1)), first[-1][0])] if first else None
    return _frame("Cumulative profit (units, 1 per bet)", "game day", "units", (0, max(n - 1, 1)), (lo, hi),
                  "".join(body), legend, ticks)


def _calibration_notes(calibration: dict[str, dict[str, Any]]) -> str:
    """Why each system's rows were or were not bet (its last step's calibration)."""
    items = "".join(
        f"<li><b>{html.escape(sid)}</b> (steps by calibration: "
        f"{html.escape(', '.join(f'{k} {v}' for k, v in sorted(cal['steps'].items())))}): "
        f"{html.escape(cal['last']['reason'])}</li>"
        for sid, cal in sorted(calibration.items()) if cal.get("last"))
    return f"<p>Calibration of P(over) on the standardized edge (last step):</p><ul>{items}</ul>" if items else ""


def write_report(path: Path, result: dict[str, Any], curves: dict[str, list[tuple[str, float]]]) -> Path:
    metrics = result["metrics"]
    head = ("system", "n", "MAE", "RMSE", "rows w/ line", "MAE on them", "line MAE", "bets", "hit rate (95% CI)",
            "ROI (95% CI)", "break-even", "Brier", "ECE")

    def fmt(x: Any, d: int = 3) -> str:
        return "–" if x is None else f"{x:.{d}f}"

    rows = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in (
            html.escape(m["system_id"]), m["n"], fmt(m["mae"]), fmt(m["rmse"]), m["n_lined"], fmt(m["mae_lined"]),
            fmt(m["line_mae"]), m["n_bets"],
            f"{fmt(m['hit_rate'])} ({fmt(m['hit_rate_ci'][0])}–{fmt(m['hit_rate_ci'][1])})",
            f"{fmt(m['roi'])} ({fmt(m['roi_ci'][0])}–{fmt(m['roi_ci'][1])})", fmt(m["breakeven"]),
            fmt(m["brier"]), fmt(m["ece"]))) + "</tr>"
        for m in metrics)
    intro = html.escape(result["description"]) if result.get("description") else (
        f"Run <code>{html.escape(result['run_id'])}</code>: {result['days']} game days, retrained every "
        f"{result['retrain_days']} game days ({result['steps']} models), each trained only on games before its first "
        "day; lines as posted before the prediction time; players who did not play voided. Hit rate excludes pushes; "
        "ROI is per unit staked at the offered price.")
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>nbaprops {html.escape(result['run_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1150px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}.plots{{display:flex;flex-wrap:wrap;gap:12px}}</style>
</head><body><h1>{html.escape(result.get('heading', 'Walk-forward backtest'))}: {html.escape(result['market'])}, {result['start']} to {result['end']}</h1>
<p>{intro}</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{rows}</table>
{_calibration_notes(result.get("calibration", {}))}
<div class="plots">{reliability_svg(metrics)}{edge_svg(metrics)}{tier_svg(metrics)}{profit_svg(curves)}</div>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
