"""Prices and recommendations: American odds, expected value, OVER / UNDER / PASS / NO_LINE.

A side is recommended only when it is the side of the model's edge (OVER only when the prediction is above
the line, UNDER only when below), the calibrator found a significant relation between edge and outcome, and
its expected profit per unit staked, at the price actually offered and with the *calibrated* probability,
clears ``ev_margin``. A line without a price for that side is never bet (PASS), and a row without a line is
NO_LINE. Lines are never invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbaprops.errors import ContractError


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
    expected_value: np.ndarray  # of the recommended side; NaN for PASS and NO_LINE (nothing to bet)


def recommend(
    p_over_raw: np.ndarray,
    p_over_cal: np.ndarray,
    line: np.ndarray,
    over_price: np.ndarray,
    under_price: np.ndarray,
    *,
    predicted: np.ndarray,
    margin: float,
    allow_bets: bool = True,
) -> Recommendations:
    """Recommend per row from calibrated P(over), the model's edge and the offered prices.

    Only the side of the model's edge can be bet: OVER only when ``predicted > line``, UNDER only when
    ``predicted < line``; a prediction on the line (or missing) is PASS. The calibrated probability then decides
    whether that side's expected value clears ``margin``; the expected value is reported for the recommended side
    only (NaN for PASS and NO_LINE). ``allow_bets=False`` (the calibrator found no relation
    between edge and outcome, or had too few rows) makes every row with a line PASS.

    Raises:
        ContractError: a bet would point against the edge (cannot happen by construction; checked anyway, since
            a bet against the model's own number is the failure this function exists to prevent).
    """
    p_raw = np.asarray(p_over_raw, dtype=np.float64)
    p = np.asarray(p_over_cal, dtype=np.float64)
    line = np.asarray(line, dtype=np.float64)
    edge = np.asarray(predicted, dtype=np.float64) - line
    has_line = np.isfinite(line)
    valid = has_line & np.isfinite(p) & np.isfinite(edge)
    ev_over = p * payout(over_price) - (1.0 - p)
    ev_under = (1.0 - p) * payout(under_price) - p
    ev_over = np.where(np.isfinite(ev_over), ev_over, -np.inf)
    ev_under = np.where(np.isfinite(ev_under), ev_under, -np.inf)
    bet_over = valid & (edge > 0) & (ev_over > margin) & allow_bets
    bet_under = valid & (edge < 0) & (ev_under > margin) & allow_bets
    recs = np.where(~has_line, "NO_LINE", np.where(bet_over, "OVER", np.where(bet_under, "UNDER", "PASS")))
    against = ((recs == "OVER") & ~(edge > 0)) | ((recs == "UNDER") & ~(edge < 0))
    if against.any():
        raise ContractError(f"{int(against.sum())} recommendation(s) against the model's edge")
    bet = bet_over | bet_under
    # The side a confidence refers to: the recommended one, else the likelier one.
    side_over = np.where(bet, bet_over, p >= 0.5)
    conf_raw = np.where(side_over, p_raw, 1.0 - p_raw)
    conf = np.where(side_over, p, 1.0 - p)
    # EV only of what is bet: a PASS row's EV (under no_signal, of the base rate, the same for every row) was
    # shown and sorted on the board as if it were an offer worth taking.
    ev = np.where(bet_over, ev_over, np.where(bet_under, ev_under, np.nan))
    nan = ~valid
    return Recommendations(
        [str(r) for r in recs],
        np.where(nan, np.nan, conf_raw),
        np.where(nan, np.nan, conf),
        np.where(nan, np.nan, ev),
    )
