"""Rule-based systems: ``moving_average`` and ``matchup``.

- ``moving_average``: a weighted mean of the recent averages, ``0.2·avg3 + 0.3·avg5 + 0.3·avg10 +
  0.2·season`` (weights renormalised over what is available); with no game yet this season, last season's
  average.
- ``matchup``: the moving average scaled by the opponent's defence and the game's pace,
  ``base · (1 + a·(opp_allowed_rel − 1) + b·(pace_rel − 1))``, where ``a`` and ``b`` are fitted by ridge
  least squares on the training rows and clipped to ``[0, 1.5]``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from nbaprops.systems.base import PredictionSystem, column

WEIGHTS = (("avg3", 0.2), ("avg5", 0.3), ("avg10", 0.3), ("season_avg", 0.2))


def weighted_recent(features: pa.Table, stat: str) -> np.ndarray:
    """The moving-average baseline of ``stat`` per row (NaN without any history)."""
    total = np.zeros(features.num_rows)
    weight = np.zeros(features.num_rows)
    for suffix, w in WEIGHTS:
        values = column(features, f"{stat}_{suffix}")
        ok = np.isfinite(values)
        total += np.where(ok, values * w, 0.0)
        weight += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = total / weight
    last = column(features, f"{stat}_last_season_avg")
    return np.where(weight > 0, value, last)


class MovingAverage(PredictionSystem):
    system_id = "moving_average"

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        self.weights_ = dict(WEIGHTS)

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        return weighted_recent(features, self.stat)


class Matchup(PredictionSystem):
    system_id = "matchup"

    def _context(self, features: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        base = weighted_recent(features, self.stat)
        opp = np.nan_to_num(column(features, f"opp_allowed_{self.stat}_rel") - 1.0)
        pace = (column(features, "team_pace10") + column(features, "opp_pace10")) / 2.0
        return base, opp, pace

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        base, opp, pace = self._context(features)
        self.league_pace_ = float(np.nanmean(pace)) if np.isfinite(pace).any() else 100.0
        pace_rel = np.nan_to_num(pace / self.league_pace_ - 1.0)
        ok = np.isfinite(base) & np.isfinite(actual)
        x = np.column_stack([base[ok] * opp[ok], base[ok] * pace_rel[ok]])
        y = actual[ok] - base[ok]
        ridge = 1e-3 * float(np.sum(x**2)) + 1e-9
        coef = np.linalg.solve(x.T @ x + ridge * np.eye(2), x.T @ y) if ok.sum() > 10 else np.zeros(2)
        self.coef_ = np.clip(coef, 0.0, 1.5)

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        base, opp, pace = self._context(features)
        pace_rel = np.nan_to_num(pace / self.league_pace_ - 1.0)
        return np.asarray(base * (1.0 + self.coef_[0] * opp + self.coef_[1] * pace_rel), dtype=np.float64)
