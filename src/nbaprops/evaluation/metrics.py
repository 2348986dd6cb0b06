"""Metrics of a graded run, per system and market.

- ``n``, ``mae``, ``rmse``: every non-void row with a prediction.
- ``line_mae``: on the rows that had a line, the line's own absolute error; ``mae_lined`` is the model's on
  the same rows, so the two compare like for like.
- ``n_bets``, ``hit_rate`` (wins / (wins + losses), pushes excluded) with a 95% Wilson interval, ``roi``
  (profit per unit staked at the offered prices, pushes included as 0) with a normal 95% interval, and
  ``breakeven`` (the mean win probability the offered prices require). Also by edge bucket and direction.
- ``n_bets_against_edge``: recommendations (OVER / UNDER, graded or void) on the side opposite to the model's
  edge (must be 0); ``calibration_rows``: rows with a line per calibration method (``logistic`` may bet,
  ``no_signal`` and ``none`` never do).
- ``brier``, ``log_loss``, ``ece``: of P(win) — the calibrated probability that the row's side wins (the
  recommended side of a bet, else the likelier side) — over every decided row with a line; ``ece_bets`` over
  the bets only. ECE uses ten equal-width bins, weighted by their rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.systems.betting import payout

EDGE_BUCKETS = ((0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, math.inf))
Z = 1.959964


def wilson(wins: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return None, None
    p = wins / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def ece(p: np.ndarray, won: np.ndarray, bins: int = 10) -> float | None:
    if p.size == 0:
        return None
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() / p.size * abs(p[sel].mean() - won[sel].mean())
    return float(total)


def reliability(p: np.ndarray, won: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return [
        {
            "p_mean": float(p[idx == b].mean()),
            "won_rate": float(won[idx == b].mean()),
            "n": int((idx == b).sum()),
        }
        for b in range(bins)
        if (idx == b).any()
    ]


def _f(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def bet_stats(outcome: np.ndarray, profit: np.ndarray, price: np.ndarray) -> dict[str, Any]:
    wins = int((outcome == "win").sum())
    losses = int((outcome == "loss").sum())
    pushes = int((outcome == "push").sum())
    n = wins + losses + pushes
    lo, hi = wilson(wins, wins + losses)
    roi = float(profit.mean()) if n else None
    roi_half = float(Z * profit.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {
        "n_bets": n,
        "wins": wins,
        "losses": losses,
        "pushes": pushes,
        "hit_rate": wins / (wins + losses) if wins + losses else None,
        "hit_rate_ci": [lo, hi],
        "roi": roi,
        "roi_ci": [roi - roi_half, roi + roi_half]
        if roi is not None and roi_half is not None
        else [None, None],
        "breakeven": float(np.mean(1.0 / (1.0 + payout(price)))) if n else None,
    }


_GRADED = np.array(["win", "loss", "push"], dtype=object)


class GradeColumns:
    """The columns of a graded run as NumPy arrays, converted once (nulls as NaN, "" or "unknown"), with each
    row's (system, market) group as an integer code. Every metric below reads these; selecting a group keeps the
    rows' order, so a figure computed here equals the same figure computed on a filtered table."""

    def __init__(self, grades: pa.Table) -> None:
        def floats(name: str) -> np.ndarray:
            return np.asarray(
                pc.fill_null(grades.column(name).cast(pa.float64()), math.nan).to_numpy(), dtype=float
            )

        def texts(name: str, missing: str) -> np.ndarray:
            column = grades.column(name)
            column = pc.if_else(pc.equal(column, ""), missing, column) if missing != "" else column
            return np.asarray(pc.fill_null(column, missing).to_numpy(zero_copy_only=False), dtype=object)

        self.rows = grades.num_rows
        self.pred = floats("predicted_value")
        self.actual = floats("actual_value")
        self.line = floats("line_value")
        self.profit = floats("profit")
        self.p_win = floats("p_win")
        self.side_won = floats("side_won")
        self.rec = np.asarray(grades.column("recommendation").to_numpy(zero_copy_only=False), dtype=object)
        self.outcome = texts("outcome", "")
        self.is_bet = np.isin(self.outcome, _GRADED)
        self.over = self.rec == "OVER"
        self.under = self.rec == "UNDER"
        self.price = np.where(self.over, floats("over_price"), floats("under_price"))
        self.methods: list[str] = []
        self.method_code = np.zeros(self.rows, dtype=np.int64)
        if "calibration_method" in grades.column_names:
            method = pc.dictionary_encode(pa.array(texts("calibration_method", "unknown"), pa.string()))
            self.methods = method.dictionary.to_pylist()
            self.method_code = np.asarray(method.indices.to_numpy(), dtype=np.int64)
        self.game_date = grades.column("game_date").to_numpy()
        system = pc.dictionary_encode(grades.column("system_id").combine_chunks())
        market = pc.dictionary_encode(grades.column("market").combine_chunks())
        systems, markets = system.dictionary.to_pylist(), market.dictionary.to_pylist()
        self.group = np.asarray(system.indices.to_numpy(), dtype=np.int64) * len(markets) + np.asarray(
            market.indices.to_numpy(), dtype=np.int64
        )
        present = np.unique(self.group)
        self.keys = sorted(
            ((systems[int(g) // len(markets)], markets[int(g) % len(markets)], int(g)) for g in present),
            key=lambda k: (k[0], k[1]),
        )


def error_figures(pred: np.ndarray, actual: np.ndarray, line: np.ndarray) -> dict[str, Any]:
    """``n``, ``mae``, ``n_lined``, ``mae_lined``, ``line_mae`` of some rows (the module docstring)."""
    ok = np.isfinite(pred) & np.isfinite(actual)
    lined = ok & np.isfinite(line)
    err = pred[ok] - actual[ok]
    return {
        "n": int(ok.sum()),
        "mae": _f(np.mean(np.abs(err))) if ok.any() else None,
        "rmse": _f(np.sqrt(np.mean(err**2))) if ok.any() else None,
        "n_lined": int(lined.sum()),
        "mae_lined": _f(np.mean(np.abs(pred[lined] - actual[lined]))) if lined.any() else None,
        "line_mae": _f(np.mean(np.abs(line[lined] - actual[lined]))) if lined.any() else None,
    }


def row_figures(cols: GradeColumns, rows: np.ndarray) -> dict[str, Any]:
    """The error figures and the bets' figures (:func:`bet_stats`) of the rows at ``rows``, in their order."""
    outcome = cols.outcome[rows]
    is_bet = cols.is_bet[rows]
    return {
        **error_figures(cols.pred[rows], cols.actual[rows], cols.line[rows]),
        **bet_stats(outcome[is_bet], cols.profit[rows][is_bet], cols.price[rows][is_bet]),
    }


def compute_metrics(grades: pa.Table | GradeColumns) -> list[dict[str, Any]]:
    """One row per (system, market) of a graded run (see the module docstring)."""
    cols = grades if isinstance(grades, GradeColumns) else GradeColumns(grades)
    out = []
    for system_id, market, code in cols.keys:
        sel = cols.group == code
        pred = cols.pred[sel]
        actual = cols.actual[sel]
        line = cols.line[sel]
        ok = np.isfinite(pred) & np.isfinite(actual)
        lined = ok & np.isfinite(line)
        over, under = cols.over[sel], cols.under[sel]
        outcome = cols.outcome[sel]
        profit = cols.profit[sel]
        price = cols.price[sel]
        is_bet = cols.is_bet[sel]
        # A bet whose side disagrees with the model's own number (OVER with the prediction at or below the line,
        # UNDER at or above): must be 0, counted so that a regression shows.
        against = (over | under) & np.isfinite(line) & np.where(over, ~(pred > line), ~(pred < line))
        counts = np.bincount(cols.method_code[sel][np.isfinite(line)], minlength=len(cols.methods))
        calibration_rows = {m: int(counts[i]) for i, m in sorted(enumerate(cols.methods), key=lambda e: e[1])}
        calibration_rows = {m: n for m, n in calibration_rows.items() if n}
        p_win = cols.p_win[sel]
        side_won = cols.side_won[sel]
        decided = np.isfinite(p_win) & np.isfinite(side_won)
        pw, sw = p_win[decided], side_won[decided]
        pw_c = np.clip(pw, 1e-6, 1 - 1e-6)
        bets = bet_stats(outcome[is_bet], profit[is_bet], price[is_bet])
        errors = error_figures(pred, actual, line)
        edge = np.abs(pred - line)
        by_edge = []
        for lo, hi in EDGE_BUCKETS:
            b = is_bet & (edge >= lo) & (edge < hi)
            by_edge.append(
                {
                    "edge_from": lo,
                    "edge_to": None if math.isinf(hi) else hi,
                    **bet_stats(outcome[b], profit[b], price[b]),
                }
            )
        by_direction = [
            {
                "direction": d,
                **bet_stats(outcome[is_bet & side], profit[is_bet & side], price[is_bet & side]),
            }
            for d, side in (("OVER", over), ("UNDER", under))
        ]
        bet_dec = decided & is_bet & (outcome != "push")
        tiers = []
        if lined.any():
            edges = np.quantile(line[lined], [0.25, 0.5, 0.75])
            tier = np.searchsorted(edges, line, side="right")
            for t in range(4):
                m = lined & (tier == t)
                if m.any():
                    tiers.append(
                        {
                            "tier": t,
                            "line_from": float(line[m].min()),
                            "line_to": float(line[m].max()),
                            "n": int(m.sum()),
                            "mae": float(np.mean(np.abs(pred[m] - actual[m]))),
                            "line_mae": float(np.mean(np.abs(line[m] - actual[m]))),
                        }
                    )
        out.append(
            {
                "system_id": str(system_id),
                "market": str(market),
                "n": errors["n"],
                "void": int((~np.isfinite(actual)).sum()),
                "mae": errors["mae"],
                "rmse": errors["rmse"],
                "n_lined": errors["n_lined"],
                "mae_lined": errors["mae_lined"],
                "line_mae": errors["line_mae"],
                **bets,
                "n_bets_against_edge": int(against.sum()),
                "calibration_rows": calibration_rows,
                "brier": _f(np.mean((pw - sw) ** 2)) if pw.size else None,
                "log_loss": _f(-np.mean(sw * np.log(pw_c) + (1 - sw) * np.log(1 - pw_c)))
                if pw.size
                else None,
                "ece": ece(pw, sw),
                "ece_bets": ece(p_win[bet_dec], side_won[bet_dec]),
                "n_calibration": int(pw.size),
                "by_edge": by_edge,
                "by_direction": by_direction,
                "by_tier": tiers,
                "reliability": reliability(pw, sw) if pw.size else [],
            }
        )
    return out


def cumulative_profit(grades: pa.Table) -> dict[str, list[tuple[str, float]]]:
    """Per system (per "system market" when the grades span several markets): (date, cumulative profit in
    units) after each game day with bets."""
    several = pc.count_distinct(grades.column("market")).as_py() > 1
    bets = grades.filter(pc.is_valid(grades.column("profit")))  # the rows with a profit, in their order
    cols = {n: bets.column(n).to_pylist() for n in ("system_id", "market", "game_date", "profit")}
    per: dict[str, dict[str, float]] = {}
    for sid, market, day, profit in zip(
        cols["system_id"], cols["market"], cols["game_date"], cols["profit"], strict=True
    ):
        if profit is None:
            continue
        name = f"{sid} {market}" if several else str(sid)
        per.setdefault(name, {}).setdefault(str(day), 0.0)
        per[name][str(day)] += profit
    result = {}
    for sid, days in per.items():
        total = 0.0
        series = []
        for day in sorted(days):
            total += days[day]
            series.append((day, total))
        result[sid] = series
    return result
