"""Prices and recommendations: American odds, expected value, OVER / UNDER / PASS / NO_LINE.

A side is recommended only when its expected profit per unit staked, at the price actually offered and with
the *calibrated* probability, clears ``ev_margin``; a line without a price for that side is never bet
(PASS), and a row without a line is NO_LINE. Lines are never invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def payout(american: np.ndarray) -> np.ndarray:
    """Profit per unit staked on a win at American odds (``-110`` → 0.909, ``+150`` → 1.5)."""
    a = np.asarray(american, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, a / 100.0, 100.0 / np.abs(a))


def implied(american: np.ndarray) -> np.ndarray:
    """Implied probability of American odds (with the book's margin)."""
    return 1.0 / (1.0 + payout(american))


@dataclass(frozen=True)
class Recommendations:
    recommendation: list[str]
    confidence_raw: np.ndarray  # raw P(the recommended side wins) (for PASS: the likelier side)
    confidence_score: np.ndarray  # calibrated
    expected_value: np.ndarray  # of the recommended side (for PASS: the better side)


def recommend(
    p_over_raw: np.ndarray,
    p_over_cal: np.ndarray,
    line: np.ndarray,
    over_price: np.ndarray,
    under_price: np.ndarray,
    *,
    margin: float,
) -> Recommendations:
    """Recommend per row from calibrated P(over) and the offered prices."""
    p_raw = np.asarray(p_over_raw, dtype=np.float64)
    p = np.asarray(p_over_cal, dtype=np.float64)
    has_line = np.isfinite(np.asarray(line, dtype=np.float64)) & np.isfinite(p)
    ev_over = p * payout(over_price) - (1.0 - p)
    ev_under = (1.0 - p) * payout(under_price) - p
    ev_over = np.where(np.isfinite(ev_over), ev_over, -np.inf)
    ev_under = np.where(np.isfinite(ev_under), ev_under, -np.inf)
    over_better = ev_over >= ev_under
    best_ev = np.where(over_better, ev_over, ev_under)
    bet = has_line & (best_ev > margin)
    recs = np.where(~has_line, "NO_LINE", np.where(bet, np.where(over_better, "OVER", "UNDER"), "PASS"))
    # The side a confidence refers to: the recommended one, else the likelier one.
    side_over = np.where(bet, over_better, p >= 0.5)
    conf_raw = np.where(side_over, p_raw, 1.0 - p_raw)
    conf = np.where(side_over, p, 1.0 - p)
    ev = np.where(np.isfinite(best_ev), best_ev, np.nan)
    nan = ~has_line
    return Recommendations(
        [str(r) for r in recs],
        np.where(nan, np.nan, conf_raw),
        np.where(nan, np.nan, conf),
        np.where(nan, np.nan, ev),
    )
