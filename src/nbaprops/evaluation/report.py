"""A self-contained HTML report of a backtest: inline SVG plots (matplotlib, see :mod:`nbaprops.evaluation.charts`), no
scripts, no external files.

Plots: reliability diagram of P(win), hit rate by edge bucket with 95% intervals against break-even, MAE by
player tier against the line's own (one chart per market with lined rows: tiers are line quartiles, which mean
nothing across markets), cumulative profit in units. A table of the headline metrics follows, one row per
system and market. Over several markets every series is named "system market".
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from nbaprops.evaluation import charts


def series_label(metric: dict[str, Any], several_markets: bool) -> str:
    """A metric row's name in legends: its system, and its market when the report spans several."""
    return f"{metric['system_id']} {metric['market']}" if several_markets else str(metric["system_id"])


def _several_markets(metrics: list[dict[str, Any]]) -> bool:
    return len({m["market"] for m in metrics}) > 1


def reliability_svg(metrics: list[dict[str, Any]]) -> str:
    with charts.figure("Reliability of P(win)", xlabel="predicted P(win)", ylabel="observed win rate") as (
        fig,
        ax,
    ):
        ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfect calibration")
        drawn = 0
        for i, m in enumerate(metrics):
            pts = m["reliability"]
            if not pts:
                continue
            drawn += 1
            ax.plot(
                [p["p_mean"] for p in pts],
                [p["won_rate"] for p in pts],
                color=charts.color(i),
                marker="o",
                markersize=4,
                linewidth=1.2,
                label=series_label(m, _several_markets(metrics)),
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        if drawn:
            charts.legend_outside(ax)
        else:
            charts.empty(ax, "No decided rows with a line: nothing to calibrate against.")
        return charts.svg(fig)


def _edge_label(bucket: dict[str, Any]) -> str:
    return (
        f"{bucket['edge_from']:g}-{bucket['edge_to']:g}" if bucket["edge_to"] else f"{bucket['edge_from']:g}+"
    )


def edge_svg(metrics: list[dict[str, Any]]) -> str:
    buckets = metrics[0]["by_edge"] if metrics else []
    with charts.figure("Hit rate by edge (95% Wilson)", xlabel="|predicted - line|", ylabel="hit rate") as (
        fig,
        ax,
    ):
        be = [b["breakeven"] for m in metrics for b in m["by_edge"] if b["breakeven"]]
        if be:
            level = sum(be) / len(be)
            ax.axhline(level, color="#d62728", linestyle="--", linewidth=1, label=f"break-even {level:.3f}")
        width = 0.8 / max(len(metrics), 1)
        drawn = 0
        for i, m in enumerate(metrics):
            xs, ys, lo, hi = [], [], [], []
            for k, b in enumerate(m["by_edge"]):
                if b["hit_rate"] is None:
                    continue
                xs.append(k - 0.4 + width * (i + 0.5))
                ys.append(b["hit_rate"])
                lo.append(b["hit_rate"] - b["hit_rate_ci"][0])
                hi.append(b["hit_rate_ci"][1] - b["hit_rate"])
            if xs:
                drawn += 1
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[lo, hi],
                    fmt="o",
                    markersize=4,
                    capsize=2,
                    color=charts.color(i),
                    label=series_label(m, _several_markets(metrics)),
                )
        ax.set_xticks(range(len(buckets)), [_edge_label(b) for b in buckets])
        if drawn:
            ax.set_ylim(0, 1)
            charts.legend_outside(ax)
        else:
            charts.empty(ax, "No bets were recommended: no hit rate to show.")
        return charts.svg(fig)


def tier_svgs(metrics: list[dict[str, Any]]) -> list[str]:
    """One tier chart per market whose graded rows had lines (one empty chart saying so when none had)."""
    markets = sorted({m["market"] for m in metrics if m["by_tier"]})
    if not markets:
        return [tier_svg([])]
    several = len({m["market"] for m in metrics}) > 1
    return [
        tier_svg([m for m in metrics if m["market"] == market], market=market if several else None)
        for market in markets
    ]


def tier_svg(metrics: list[dict[str, Any]], *, market: str | None = None) -> str:
    """MAE by line quartile of one market's systems against the line's own MAE on the same rows."""
    tiers: list[dict[str, Any]] = next((m["by_tier"] for m in metrics if m["by_tier"]), [])
    title = "MAE by player tier (line quartiles)" + (f": {market}" if market else "")
    with charts.figure(title, xlabel="line", ylabel="MAE") as (fig, ax):
        if not tiers:
            charts.empty(ax, "No graded rows had a line: no tiers to compare.")
            return charts.svg(fig)
        series = [("line", [t["line_mae"] for t in tiers], "#555555")] + [
            (m["system_id"], [t["mae"] for t in m["by_tier"]], charts.color(i))
            for i, m in enumerate(metrics)
            if len(m["by_tier"]) == len(tiers)
        ]
        width = 0.8 / len(series)
        for j, (name, values, colour) in enumerate(series):
            ax.bar(
                [k - 0.4 + width * (j + 0.5) for k in range(len(tiers))],
                values,
                width=width * 0.95,
                color=colour,
                label=name,
            )
        ax.set_xticks(range(len(tiers)), [f"{t['line_from']:g}-{t['line_to']:g}" for t in tiers])
        ax.grid(axis="x", visible=False)
        charts.legend_outside(ax)
        return charts.svg(fig)


def profit_svg(curves: dict[str, list[tuple[str, float]]]) -> str:
    with charts.figure(
        "Cumulative profit (units, 1 per bet)", xlabel="game day (days with bets)", ylabel="units"
    ) as (fig, ax):
        if not any(curves.values()):
            charts.empty(ax, "No graded bets: no profit curve.")
            return charts.svg(fig)
        days = sorted({d for series in curves.values() for d, _ in series})
        position = {d: k for k, d in enumerate(days)}
        ax.axhline(0, color="#999", linewidth=1)
        # Markers: a series of one day is a point, which a bare line would not draw (nor its legend entry show).
        drawn = [(name, series) for name, series in sorted(curves.items()) if series]
        for i, (name, series) in enumerate(drawn):
            ax.plot(
                [position[d] for d, _ in series],
                [y for _, y in series],
                color=charts.color(i),
                linewidth=1.4,
                marker="o",
                markersize=3,
                label=name,
            )
        ticks = sorted({round(k * (len(days) - 1) / 4) for k in range(5)})
        # Dates are wide: slanted so that five of them never overlap at the chart's width.
        ax.set_xticks(ticks, [days[k] for k in ticks], rotation=30, ha="right")
        if len(days) == 1:
            ax.set_xlim(-1, 1)
        charts.legend_outside(ax)
        return charts.svg(fig)


def _calibration_notes(calibration: dict[str, dict[str, Any]]) -> str:
    """Why each system's rows were or were not bet (its last step's calibration)."""
    items = "".join(
        f"<li><b>{html.escape(sid)}</b> (steps by calibration: "
        f"{html.escape(', '.join(f'{k} {v}' for k, v in sorted(cal['steps'].items())))}): "
        f"{html.escape(cal['last']['reason'])}</li>"
        for sid, cal in sorted(calibration.items())
        if cal.get("last")
    )
    return (
        f"<p>Calibration of P(over) on the standardized edge (last step):</p><ul>{items}</ul>"
        if items
        else ""
    )


def _percent(x: float | None, ci: list[float | None] | None = None) -> str:
    if x is None:
        return "–"
    if not ci or ci[0] is None or ci[1] is None:
        return f"{x * 100:+.1f}%"
    return f"{x * 100:+.1f}% [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"


def offers_table(offers: dict[str, Any] | None) -> str:
    """The bets graded at the consensus book and at the offer taken, side by side
    (:func:`nbaprops.evaluation.offers.offers_section`); empty without that section."""
    if not offers or not offers.get("metrics"):
        return ""
    head = (
        "scope",
        "rule",
        "system",
        "market",
        "bets",
        "moved",
        "no offer",
        "ROI consensus [95%]",
        "ROI offer [95%]",
        "gain [95%]",
        "hit cons. / offer",
        "overround cons. / offer",
        "margin cons. / offer",
        "ECE fair",
    )

    def f(x: Any) -> str:
        return "–" if x is None else f"{x:.3f}"

    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{c}</td>"
            for c in (
                html.escape(m["scope"]),
                html.escape(m["rule"]),
                html.escape(m["system_id"]),
                html.escape(m["market"]),
                m["n"],
                m["n_moved"],
                m["n_without_offer"],
                _percent(m["roi_consensus"], m["roi_consensus_ci"]),
                _percent(m["roi_offer"], m["roi_offer_ci"]),
                "–"
                if m["roi_gain_ci"][0] is None
                else f"[{m['roi_gain_ci'][0] * 100:+.1f}, {m['roi_gain_ci'][1] * 100:+.1f}]",
                f"{f(m['hit_consensus'])} / {f(m['hit_offer'])}",
                f"{f(m['overround_consensus'])} / {f(m['overround_offer'])}",
                f"{f(m['margin_consensus'])} / {f(m['margin_offer'])}",
                f(m["ece_fair"]),
            )
        )
        + "</tr>"
        for m in offers["metrics"]
    )
    books = ", ".join(offers.get("books") or []) or "every book"
    return (
        f"<h2>Graded at the offer taken</h2><p>Each bet at the consensus book and at the offer a user would "
        f"take among those posted by the prediction time ({html.escape(books)}; price guard "
        f"{offers.get('price_guard')}), on the same bets. <i>bets</i>: the recommended bets; <i>edge</i>: every "
        "lined row on the side of the system's edge. <i>price</i>: the best price at a line at least as good; "
        "<i>ev</i>: the best EV under the system's probability moved along the fair distribution.</p>"
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{rows}</table>"
    )


GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "MAE",
        "mean absolute error of the prediction against what the player recorded; the line's MAE is on the "
        "same rows",
    ),
    ("hit rate", "wins / (wins + losses) of the recommended bets; pushes and voids left out"),
    ("ROI", "profit per unit staked over the bets, at the prices actually offered"),
    ("break-even", "the hit rate at which ROI is 0 at those prices (52.4% at -110)"),
    ("void", "the player did not play: the bet is refunded and the row is not graded"),
    (
        "overround / margin",
        "an offer's two-way margin (implied over + implied under - 1), and what the side taken pays: its "
        "implied probability minus the fair probability of winning at its line",
    ),
    ("Brier", "mean squared error of the probability of winning (lower is better; 0.25 is a coin flip)"),
    (
        "ECE",
        "expected calibration error: the average gap between predicted and observed win rates over "
        "probability bins",
    ),
)


def _glossary() -> str:
    items = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in GLOSSARY)
    return f'<h2>Glossary</h2><dl class="glossary">{items}</dl>'


def write_report(path: Path, result: dict[str, Any], curves: dict[str, list[tuple[str, float]]]) -> Path:
    metrics = result["metrics"]
    head = (
        "system",
        "market",
        "n",
        "MAE",
        "RMSE",
        "rows w/ line",
        "MAE on them",
        "line MAE",
        "bets",
        "hit rate (95% CI)",
        "ROI (95% CI)",
        "break-even",
        "Brier",
        "ECE",
    )

    def fmt(x: Any, d: int = 3) -> str:
        return "–" if x is None else f"{x:.{d}f}"

    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{c}</td>"
            for c in (
                html.escape(m["system_id"]),
                html.escape(m["market"]),
                m["n"],
                fmt(m["mae"]),
                fmt(m["rmse"]),
                m["n_lined"],
                fmt(m["mae_lined"]),
                fmt(m["line_mae"]),
                m["n_bets"],
                f"{fmt(m['hit_rate'])} ({fmt(m['hit_rate_ci'][0])}–{fmt(m['hit_rate_ci'][1])})",
                f"{fmt(m['roi'])} ({fmt(m['roi_ci'][0])}–{fmt(m['roi_ci'][1])})",
                fmt(m["breakeven"]),
                fmt(m["brier"]),
                fmt(m["ece"]),
            )
        )
        + "</tr>"
        for m in metrics
    )
    intro = (
        html.escape(result["description"])
        if result.get("description")
        else (
            f"Run <code>{html.escape(result['run_id'])}</code>: {result['days']} game days, retrained every "
            f"{result['retrain_days']} game days ({result['steps']} models), each trained only on games before its first "
            "day; lines as posted before the prediction time; players who did not play voided. Hit rate excludes pushes; "
            "ROI is per unit staked at the offered price."
        )
    )
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>nbaprops {html.escape(result["run_id"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1250px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}.plots{{display:flex;flex-wrap:wrap;gap:12px}}
.glossary dt{{font-weight:bold}}.glossary dd{{margin:0 0 .4em 1.5em}}</style>
</head><body><h1>{html.escape(result.get("heading", "Walk-forward backtest"))}: {html.escape(result["market"])}, {result["start"]} to {result["end"]}</h1>
<p>{intro}</p>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{rows}</table>
{_calibration_notes(result.get("calibration", {}))}
{offers_table(result.get("offers"))}
<div class="plots">{reliability_svg(metrics)}{edge_svg(metrics)}{"".join(tier_svgs(metrics))}{profit_svg(curves)}</div>
{_glossary()}
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
