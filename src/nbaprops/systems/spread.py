"""Uncertainty: the spread of a system's error, learned out of sample per player tier, and P(over a line).

A tier is a band of the predicted value (quintiles of the out-of-sample predictions): a 30-point scorer
misses by more points than a 6-point scorer. The spread of a tier is the root mean squared out-of-sample
error of its rows. ``P(over)`` treats the outcome as normal around the prediction with that spread; the
calibrator (:mod:`nbaprops.systems.calibration`) corrects what that assumption gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

N_TIERS = 5
MIN_STD = 0.5


@dataclass(frozen=True)
class TierSpread:
    """Error spread per tier of predicted value.

    Attributes:
        edges: inner tier boundaries (``N_TIERS - 1`` values, ascending).
        stds: spread per tier.
        n: out-of-sample rows it was learned from.
    """

    edges: tuple[float, ...]
    stds: tuple[float, ...]
    n: int

    @classmethod
    def fit(cls, predicted: np.ndarray, actual: np.ndarray) -> TierSpread:
        pred = np.asarray(predicted, dtype=np.float64)
        act = np.asarray(actual, dtype=np.float64)
        ok = np.isfinite(pred) & np.isfinite(act)
        pred, act = pred[ok], act[ok]
        if pred.size < N_TIERS * 10:
            overall = float(np.sqrt(np.mean((act - pred) ** 2))) if pred.size else 5.0
            return cls((), (max(overall, MIN_STD),), int(pred.size))
        edges = np.unique(np.quantile(pred, np.linspace(0, 1, N_TIERS + 1)[1:-1]))
        tier = np.searchsorted(edges, pred, side="right")
        stds = []
        for k in range(edges.size + 1):
            err = act[tier == k] - pred[tier == k]
            stds.append(max(float(np.sqrt(np.mean(err**2))) if err.size else MIN_STD, MIN_STD))
        return cls(tuple(float(e) for e in edges), tuple(stds), int(pred.size))

    def std(self, predicted: np.ndarray) -> np.ndarray:
        pred = np.asarray(predicted, dtype=np.float64)
        tier = np.searchsorted(np.asarray(self.edges), np.nan_to_num(pred), side="right")
        return np.asarray(self.stds)[tier]


def p_over(predicted: np.ndarray, std: np.ndarray, line: np.ndarray) -> np.ndarray:
    """P(outcome > line) under a normal error model (NaN where the line or prediction is missing)."""
    pred = np.asarray(predicted, dtype=np.float64)
    z = (pred - np.asarray(line, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.asarray(ndtr(z), dtype=np.float64)
