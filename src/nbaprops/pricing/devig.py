"""De-vig: a book's two-way American price (over, under) → its fair P(over), vectorized over numpy arrays.

A book quotes implied probabilities ``q_over + q_under = 1 + overround``; each method removes the overround
its own way (Clarke, Kovalchik & Ingram 2017, "Adjusting bookmaker's odds to allow for overround"):

- ``multiplicative``: ``q_over / (q_over + q_under)`` (the margin shared in proportion to the probabilities).
- ``additive``: ``q_over - overround / 2`` (the margin shared equally), clipped into (0, 1).
- ``power``: ``q_over ** k`` with ``k`` such that ``q_over ** k + q_under ** k = 1`` (more margin on the
  long shot: the favourite–long-shot bias).
- ``shin``: Shin's (1993) insider-trading model, ``p_i = (sqrt(z² + 4 (1 - z) q_i² / S) - z) / (2 (1 - z))``
  with ``S = q_over + q_under`` and ``z`` such that the ``p_i`` sum to 1.

``power`` and ``shin`` are solved by a vectorized bisection (60 halvings: the interval shrinks below an ulp of
the answer); every method is the same function of the same arrays, so a slate is one call. For two outcomes
Shin's solution coincides with the additive one (a known identity, checked by a test): both are kept so a
caller can name either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

Method = Literal["multiplicative", "additive", "power", "shin"]
METHODS: tuple[Method, ...] = get_args(Method)

FloatArray = NDArray[np.float64]

_HALVINGS = 60


def implied_probability(american: ArrayLike) -> FloatArray:
    """Implied probability of American odds (``-110`` → 0.5238, ``+150`` → 0.4); NaN stays NaN."""
    odds = np.asarray(american, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(odds < 0, -odds / (100.0 - odds), 100.0 / (100.0 + odds))


def decimal_odds(american: ArrayLike) -> FloatArray:
    """Decimal odds (stake included) of American odds: ``-110`` → 1.909, ``+150`` → 2.5."""
    odds = np.asarray(american, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(odds < 0, 1.0 + 100.0 / -odds, 1.0 + odds / 100.0)


def american_odds(probability: ArrayLike) -> FloatArray:
    """Fair American odds of a probability in (0, 1): 0.5 → +100, 0.6 → -150, 0.4 → +150."""
    prob = np.asarray(probability, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(prob > 0.5, -100.0 * prob / (1.0 - prob), 100.0 * (1.0 - prob) / prob)


def overround(over_price: ArrayLike, under_price: ArrayLike) -> FloatArray:
    """The book's margin on a two-way offer: ``q_over + q_under - 1`` (0.0476 for -110/-110)."""
    return implied_probability(over_price) + implied_probability(under_price) - 1.0


def _bisect(lo: FloatArray, hi: FloatArray, excess: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """Root of an increasing vectorized ``excess(x)`` between ``lo`` and ``hi`` (elementwise)."""
    for _ in range(_HALVINGS):
        mid = 0.5 * (lo + hi)
        above = excess(mid) > 0.0
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def _power(q_over: FloatArray, q_under: FloatArray) -> FloatArray:
    # q^k decreases in k for q in (0, 1): k = 1 gives the book's sum (>= 1), a large k gives ~0.
    lo = np.ones_like(q_over)
    hi = np.full_like(q_over, 64.0)
    k = _bisect(lo, hi, lambda k: 1.0 - (q_over**k + q_under**k))
    return np.asarray(q_over**k, dtype=np.float64)


def _shin_p(q: FloatArray, total: FloatArray, z: FloatArray) -> FloatArray:
    return np.asarray((np.sqrt(z * z + 4.0 * (1.0 - z) * q * q / total) - z) / (2.0 * (1.0 - z)), np.float64)


def _shin(q_over: FloatArray, q_under: FloatArray) -> FloatArray:
    total = q_over + q_under
    # The sum of Shin's p decreases in z; z = 0 gives sqrt-normalised q (sum >= 1 when total >= 1).
    lo = np.zeros_like(q_over)
    hi = np.full_like(q_over, 0.999)
    z = _bisect(lo, hi, lambda z: 1.0 - (_shin_p(q_over, total, z) + _shin_p(q_under, total, z)))
    p_over = _shin_p(q_over, total, z)
    return np.asarray(p_over / (p_over + _shin_p(q_under, total, z)), np.float64)


def fair_over(over_price: ArrayLike, under_price: ArrayLike, method: Method = "multiplicative") -> FloatArray:
    """Fair P(over) of two-way American prices, elementwise; NaN where either price is missing.

    For an integer line this is P(over | no push): a push refunds both sides, so the prices speak only of the
    two outcomes that settle.

    Args:
        over_price: American odds of the over (scalar or array).
        under_price: American odds of the under, same shape.
        method: ``multiplicative``, ``additive``, ``power`` or ``shin`` (module docstring).

    Raises:
        ValueError: for an unknown method.
    """
    q_over = np.atleast_1d(implied_probability(over_price))
    q_under = np.atleast_1d(implied_probability(under_price))
    q_over, q_under = np.broadcast_arrays(q_over, q_under)
    valid = np.isfinite(q_over) & np.isfinite(q_under) & (q_over > 0) & (q_under > 0)
    # Fill invalid entries with a harmless pair so the solvers see finite numbers everywhere.
    qo = np.where(valid, q_over, 0.5)
    qu = np.where(valid, q_under, 0.5)
    if method == "multiplicative":
        fair = qo / (qo + qu)
    elif method == "additive":
        fair = np.clip(qo - 0.5 * (qo + qu - 1.0), 1e-9, 1.0 - 1e-9)
    elif method == "power":
        # An offer with no margin (sum <= 1, seen on boosted prices) has nothing to remove: normalise.
        fair = np.where(qo + qu > 1.0, _power(qo, qu), qo / (qo + qu))
    elif method == "shin":
        fair = np.where(qo + qu > 1.0, _shin(qo, qu), qo / (qo + qu))
    else:
        raise ValueError(f"unknown de-vig method {method!r}: choose one of {', '.join(METHODS)}")
    result = np.where(valid, fair, np.nan)
    return result if np.ndim(over_price) or np.ndim(under_price) else result.reshape(())
