"""Calibration of P(over) as a monotone function of the model's standardized edge.

The input is the standardized edge ``z = (prediction - line) / sigma`` of a row (``sigma`` the system's
out-of-sample error spread), the target whether the outcome went over (pushes left out). The calibrated
probability is a logistic function of ``z``::

    P(over) = 1 / (1 + exp(-(a + b * z)))

fitted by maximum likelihood on out-of-time graded rows that had a real line (the last weeks of the training
window, or graded predictions of earlier walk-forward steps). A bigger edge can therefore never mean a smaller
P(over): the map cannot invert the model, it can only say how much of the edge is real. Before the map is
trusted, the slope ``b`` must be significantly above zero (one-sided Wald test at ``ALPHA``, i.e. the lower
bound ``b - 1.645 * se(b)`` above zero). When it is not, the calibrator reports ``no_signal``: P(over) is the
base rate of overs (intercept only, the same for every row) and no row is bet. Fewer than ``MIN_ROWS`` rows:
``none`` — the raw P(over) is kept for reference and no row is bet either, because nothing shows the edge is
real. ``reason`` says which of these applies, in words a user can act on.

The raw P(over) (``p_over_raw``, the normal error model's ``Phi(z)``) is stored next to the calibrated one;
``z`` is recovered from the prediction, its spread and the line, so calibration learns from the edge, not
from the raw probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, ndtr

MIN_ROWS = 50
ALPHA = 0.05
_Z_ONE_SIDED = 1.6448536269514722  # Phi^-1(1 - ALPHA)
CALIBRATION_VERSION = 2  # 1: free map of raw P(over) (Platt / isotonic); 2: logistic on the standardized edge

Method = Literal["none", "logistic", "no_signal"]


def standardized_edge(predicted: np.ndarray, std: np.ndarray, line: np.ndarray) -> np.ndarray:
    """``(predicted - line) / std`` (NaN where any input is missing or the spread is not positive)."""
    pred = np.asarray(predicted, dtype=np.float64)
    sd = np.asarray(std, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (pred - np.asarray(line, dtype=np.float64)) / sd
    return np.where(np.isfinite(z) & (sd > 0), z, np.nan)


def _logistic_fit(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood (a, b) of ``P(y=1) = expit(a + b z)`` by Newton's method, and their covariance.

    Newton on a two-parameter logistic likelihood converges in a handful of steps; the cap only guards against
    separated data, where the estimate runs off and its standard error with it (the test then fails honestly).
    """
    design = np.column_stack([np.ones_like(z), z])
    beta = np.zeros(2)
    hessian = np.eye(2)
    for _ in range(50):
        p = expit(design @ beta)
        w = p * (1 - p)
        hessian = design.T @ (design * w[:, None])
        step = np.linalg.lstsq(hessian, design.T @ (y - p), rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = expit(design @ beta)
    hessian = design.T @ (design * (p * (1 - p))[:, None])
    return beta, np.linalg.pinv(hessian)


@dataclass(frozen=True)
class Calibrator:
    """Maps the standardized edge to a calibrated P(over), monotone increasing (see the module docstring).

    Attributes:
        method: ``logistic`` (a significant positive slope: rows may be bet), ``no_signal`` (fitted, slope not
            significantly above zero: P(over) is the base rate, every row PASS) or ``none`` (too few rows).
        n: rows it was fitted on.
        intercept: ``a``; for ``no_signal`` the logit of the base rate of overs.
        slope: ``b`` of the full fit (reported even when not significant; ``0`` is used for ``no_signal``).
        slope_se: standard error of ``b``.
        slope_lower: one-sided 95% lower bound ``b - 1.645 se``: the slope is significant when it is above zero.
        p_value: one-sided p-value of ``b <= 0``.
        over_rate: share of overs among the rows.
        reason: why rows may or may not be bet, for the user.
    """

    method: Method = "none"
    n: int = 0
    intercept: float = 0.0
    slope: float = 0.0
    slope_se: float = math.nan
    slope_lower: float = math.nan
    p_value: float = math.nan
    over_rate: float = math.nan
    # Reasons say why; whoever shows one says what follows ("no bets — <reason>" said "no bets" twice).
    reason: str = f"fewer than {MIN_ROWS} graded rows with a line to calibrate on"

    @property
    def allows_bets(self) -> bool:
        """True only when the edge is shown to carry signal (a significant positive slope)."""
        return self.method == "logistic"

    @classmethod
    def fit(cls, z: np.ndarray, went_over: np.ndarray) -> Calibrator:
        """Fit on standardized edges ``z`` and whether each outcome went over (1.0) or under (0.0)."""
        z = np.asarray(z, dtype=np.float64)
        y = np.asarray(went_over, dtype=np.float64)
        ok = np.isfinite(z) & np.isfinite(y)
        z, y = z[ok], y[ok]
        n = int(z.size)
        if n < MIN_ROWS:
            return cls(
                "none",
                n,
                reason=f"{n} graded row(s) with a line to calibrate on, fewer than {MIN_ROWS}",
            )
        rate = float(y.mean())
        base = float(np.log(np.clip(rate, 0.01, 0.99) / (1 - np.clip(rate, 0.01, 0.99))))
        if rate in (0.0, 1.0) or np.ptp(z) == 0:
            varied = "outcome" if rate in (0.0, 1.0) else "edge"
            return cls(
                "no_signal",
                n,
                intercept=base,
                over_rate=rate,
                reason=f"no variation in the {varied} of the {n} calibration rows, so no relation can be "
                "measured",
            )
        beta, cov = _logistic_fit(z, y)
        se = float(math.sqrt(max(cov[1, 1], 0.0)))
        slope = float(beta[1])
        lower = slope - _Z_ONE_SIDED * se
        p_value = float(1.0 - ndtr(slope / se)) if se > 0 else (0.0 if slope > 0 else 1.0)
        test = f"slope {slope:.3f}, one-sided 95% lower bound {lower:.3f}"
        if np.isfinite(lower) and lower > 0:
            return cls(
                "logistic",
                n,
                float(beta[0]),
                slope,
                se,
                lower,
                p_value,
                rate,
                f"P(over) rises with the edge on {n} graded rows ({test} > 0, p={p_value:.3g})",
            )
        return cls(
            "no_signal",
            n,
            base,
            slope,
            se,
            lower,
            p_value,
            rate,
            f"no relation between the model's edge and the outcome on {n} graded rows ({test} <= 0, "
            f"p={p_value:.3g})",
        )

    def transform(self, z: np.ndarray, p_over_raw: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(over) per standardized edge (NaN where ``z`` is NaN).

        Args:
            z: standardized edges.
            p_over_raw: returned unchanged for ``none`` (nothing to calibrate with); ``Phi(z)`` when omitted.
        """
        edge = np.asarray(z, dtype=np.float64)
        if self.method == "none":
            raw = ndtr(edge) if p_over_raw is None else np.asarray(p_over_raw, dtype=np.float64)
            return np.where(np.isfinite(edge), raw, np.nan)
        slope = self.slope if self.method == "logistic" else 0.0
        return np.where(np.isfinite(edge), expit(self.intercept + slope * edge), np.nan)

    def summary(self) -> dict[str, object]:
        """JSON-ready description (bundle meta, backtest output)."""

        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(x, 6)

        return {
            "method": self.method,
            "rows": self.n,
            "slope": num(self.slope) if self.n >= MIN_ROWS else None,
            "slope_se": num(self.slope_se),
            "slope_lower": num(self.slope_lower),
            "p_value": num(self.p_value),
            "over_rate": num(self.over_rate),
            "allows_bets": self.allows_bets,
            "reason": self.reason,
        }
