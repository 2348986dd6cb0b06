"""Calibration of P(over) on out-of-time graded rows.

Fitted on rows the model did not train on (the last weeks of the training window, or graded predictions of
earlier walk-forward steps) that had a real line: input the raw P(over), target whether the outcome went
over (pushes left out). Fewer than ``MIN_ROWS`` rows → no calibration (``none``); fewer than
``ISOTONIC_ROWS`` → Platt scaling on the logit; more → isotonic regression. The calibrated P(win) of a
side is ``p`` or ``1 - p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

MIN_ROWS = 50
ISOTONIC_ROWS = 1000
_EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


@dataclass
class Calibrator:
    """Maps raw P(over) to a calibrated one. ``method`` is ``none``, ``platt`` or ``isotonic``."""

    method: str = "none"
    n: int = 0
    model: Any = field(default=None, repr=False)

    @classmethod
    def fit(cls, p_raw: np.ndarray, went_over: np.ndarray) -> Calibrator:
        p = np.asarray(p_raw, dtype=np.float64)
        y = np.asarray(went_over, dtype=np.float64)
        ok = np.isfinite(p) & np.isfinite(y)
        p, y = p[ok], y[ok]
        if p.size < MIN_ROWS or np.unique(y).size < 2:
            return cls("none", int(p.size))
        if p.size < ISOTONIC_ROWS:
            model = LogisticRegression(C=1.0).fit(_logit(p).reshape(-1, 1), y.astype(int))
            return cls("platt", int(p.size), model)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return cls("isotonic", int(p.size), iso)

    def transform(self, p_raw: np.ndarray) -> np.ndarray:
        p = np.asarray(p_raw, dtype=np.float64)
        out = np.full(p.shape, np.nan)
        ok = np.isfinite(p)
        if not ok.any():
            return out
        if self.method == "platt":
            out[ok] = self.model.predict_proba(_logit(p[ok]).reshape(-1, 1))[:, 1]
        elif self.method == "isotonic":
            # Keep probabilities off exactly 0/1: a flat isotonic end is an estimate, not a certainty.
            out[ok] = np.clip(self.model.predict(p[ok]), 0.01, 0.99)
        else:
            out[ok] = p[ok]
        return out
