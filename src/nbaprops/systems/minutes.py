"""``minutes_rate``: minutes first, then a rate per minute — the stat as expected minutes × stat per minute.

Most of a prediction's error is minutes (docs/backtest.md): a player who plays 12 minutes instead of 32 misses
any per-game average. This system learns two LightGBM models on the same point-in-time features as ``gbm``:

- **minutes** (L1): the minutes the player will play, from role (starter proxy, season and recent minutes,
  their trend), rest, back-to-backs, the team's regulars missing and the game's expected pace;
- **rate** (L2, weighted by minutes): the stat per minute played, on rows with at least ``min_minutes``.

The prediction is their product. Neither model sees anything of the game predicted: the minutes played are the
*target* of the first model in training, never a feature.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from nbaprops.systems.base import PredictionSystem, column
from nbaprops.systems.gbm import FIXED, GradientBoosting, matrix


class MinutesRate(PredictionSystem):
    """Expected minutes × expected stat per minute (see the module docstring)."""

    system_id = "minutes_rate"

    def __init__(self, *, market: str = "points", min_minutes: float = 5.0) -> None:
        super().__init__(market=market)
        self.min_minutes = min_minutes

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        minutes = column(features, "actual_minutes")
        known = np.isfinite(column(features, f"{self.stat}_avg10"))
        ok = known & np.isfinite(minutes) & np.isfinite(actual)
        x = matrix(features)
        # gbm's settings (L1, the same trees) for both models; the rate model is L2, weighted by minutes.
        params: dict[str, Any] = {
            **{k: v for k, v in GradientBoosting().get_params().items() if k != "market"},
            **FIXED,
        }
        self.minutes_model_ = lgb.LGBMRegressor(**params).fit(x[ok], minutes[ok])
        played = ok & (minutes >= self.min_minutes)
        rate = np.zeros_like(actual)
        rate[played] = actual[played] / minutes[played]
        self.rate_model_ = lgb.LGBMRegressor(**{**params, "objective": "l2"}).fit(
            x[played], rate[played], sample_weight=minutes[played]
        )

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        x = matrix(features)
        minutes = np.clip(self.minutes_model_.predict(x), 0.0, 48.0)
        rate = np.clip(self.rate_model_.predict(x), 0.0, None)
        out = np.asarray(minutes * rate, dtype=np.float64)
        return np.where(np.isfinite(column(features, f"{self.stat}_avg10")), out, np.nan)
