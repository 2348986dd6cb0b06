"""The predictive count distribution of one (player, game, market): negative binomial, any line priced.

``mean`` and ``dispersion`` are arrays (one entry per player-market); the variance is
``mean + dispersion * mean²`` (NB2). A line ``L`` settles over when the count exceeds it, under when it is
below, and pushes (stake refunded) when an integer line equals the count:

- ``P(over L)  = P(X > floor(L))``
- ``P(under L) = P(X < ceil(L)) = P(X <= ceil(L) - 1)``
- ``P(push L)  = P(X = L)`` for an integer ``L``, else 0.

The tails are ``scipy.special``'s regularized incomplete beta (``betainc``, what ``nbdtr`` evaluates): the same numbers as
``scipy.stats.nbinom`` without its per-call checks, which cost more than the arithmetic on a slate.
:meth:`LineDistribution.frozen` gives the ``scipy.stats`` frozen object of one entry when a caller wants
``pmf``/``ppf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

FloatArray = NDArray[np.float64]


def nb_shape(mean: ArrayLike, dispersion: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """SciPy's ``(n, p)`` of the NB2 with this mean and dispersion (``n = 1 / dispersion``)."""
    size = 1.0 / np.asarray(dispersion, dtype=np.float64)
    mu = np.asarray(mean, dtype=np.float64)
    return np.broadcast_to(size, np.broadcast(size, mu).shape).astype(np.float64), size / (size + mu)


def _cdf(k: FloatArray, size: FloatArray, p: FloatArray) -> FloatArray:
    # P(X <= k) = I_p(size, k + 1): the regularized incomplete beta, which nbdtr itself evaluates (and which
    # takes a float k without nbdtr's truncation warning).
    return np.where(k < 0, 0.0, special.betainc(size, np.maximum(k, 0.0) + 1.0, p))


def _sf(k: FloatArray, size: FloatArray, p: FloatArray) -> FloatArray:
    # P(X > k) = 1 - I_p(size, k + 1) = I_{1-p}(k + 1, size): the same tail without the subtraction's loss of
    # precision, and ten times faster than betaincc on SciPy 1.15.
    return np.where(k < 0, 1.0, special.betainc(np.maximum(k, 0.0) + 1.0, size, 1.0 - p))


def line_probabilities(
    mean: ArrayLike, dispersion: ArrayLike, line: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(P(over), P(under), P(push))`` at ``line``, elementwise over broadcast arrays (module docstring).

    The three sum to 1: push is computed as what the two tails leave, which is exactly ``P(X = L)`` on an
    integer line and 0 (to rounding, clipped) on a half-point one.
    """
    size, p = nb_shape(mean, dispersion)
    at = np.asarray(line, dtype=np.float64)
    over = _sf(np.floor(at), size, p)
    under = _cdf(np.ceil(at) - 1.0, size, p)
    integer = np.floor(at) == at
    push = np.where(integer, np.clip(1.0 - over - under, 0.0, 1.0), 0.0)
    # Renormalise the rounding residue of a half-point line into the two sides.
    scale = np.where(integer, 1.0, 1.0 / (over + under))
    return over * scale, under * scale, push


def over_given_settled(mean: ArrayLike, dispersion: ArrayLike, line: ArrayLike) -> FloatArray:
    """P(over | the bet settles) at ``line``: what a de-vigged two-way price estimates (a push refunds)."""
    over, under, _ = line_probabilities(mean, dispersion, line)
    return np.asarray(over / (over + under), dtype=np.float64)


@dataclass(frozen=True)
class LineDistribution:
    """One NB2 count distribution per player-market (arrays of equal length); prices any line."""

    mean: FloatArray
    dispersion: FloatArray

    def __len__(self) -> int:
        return int(self.mean.shape[0])

    def probabilities(self, line: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(P(over), P(under), P(push))`` of every entry at ``line`` (scalar, or one line per entry)."""
        return line_probabilities(self.mean, self.dispersion, line)

    def at(self, index: ArrayLike) -> LineDistribution:
        """The entries at ``index`` (e.g. each offer's player-market), as a distribution of their own."""
        where = np.asarray(index, dtype=np.intp)
        return LineDistribution(self.mean[where], self.dispersion[where])

    def frozen(self, index: int) -> Any:
        """``scipy.stats.nbinom`` frozen at entry ``index`` (``pmf``, ``sf``, ``ppf``, ``rvs``)."""
        size, p = nb_shape(self.mean[index], self.dispersion[index])
        return stats.nbinom(float(size), float(p))
