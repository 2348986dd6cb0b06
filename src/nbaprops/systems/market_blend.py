"""``market_blend``: start from the sportsbook line, move it only as far as the model has earned.

The line posted before tip-off is public and, measured on real PRA lines, closer to the outcome than any
line-free system (docs/backtest.md). This system predicts, where a line exists,

    line + a × (gbm − line) + b × (P_market(over) − 0.5) + c

with ``gbm`` the line-free model's out-of-sample prediction and ``P_market(over)`` the book's de-vigged
probability (:mod:`nbaprops.features.market`). ``a``, ``b`` and ``c`` minimise the absolute error (median
regression) on the held-out training rows that had a line — the model's errors there are out of sample — and
stay 0 until ``min_lined_rows`` such rows exist, so a season without lined history predicts the line itself.
Without a line it falls back to ``gbm``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import pyarrow as pa
from sklearn.linear_model import QuantileRegressor

from nbaprops.errors import ContractError
from nbaprops.systems.base import PredictionSystem, column, holdout_mask
from nbaprops.systems.spread import TierSpread

BASE = "gbm"


class MarketBlend(PredictionSystem):
    """The line, corrected by the model where the model has earned it (see the module docstring)."""

    system_id = "market_blend"
    requires: ClassVar[tuple[str, ...]] = (BASE,)

    def __init__(self, *, market: str = "points", components: dict[str, PredictionSystem] | None = None,
                 min_lined_rows: int = 200) -> None:
        super().__init__(market=market)
        self.components = components
        self.min_lined_rows = min_lined_rows

    def get_params(self) -> dict[str, object]:
        return {"market": self.market, "components": self.components, "min_lined_rows": self.min_lined_rows}

    @staticmethod
    def _design(base: np.ndarray, line: np.ndarray, p_market: np.ndarray) -> np.ndarray:
        return np.column_stack([base - line, np.where(np.isfinite(p_market), p_market - 0.5, 0.0)])

    def _blend(self, base: np.ndarray, line: np.ndarray, p_market: np.ndarray) -> np.ndarray:
        shift = self._design(base, line, p_market) @ self.coef_ + self.intercept_
        shift = np.where(np.isfinite(base), shift, 0.0)  # no model value: the line alone
        return np.where(np.isfinite(line), line + shift, base)

    def fit(self, features: pa.Table, actual: np.ndarray) -> Self:
        from nbaprops.systems import make

        y = np.asarray(actual, dtype=np.float64)
        if features.num_rows != y.size:
            raise ContractError(f"{features.num_rows} feature rows but {y.size} actual values")
        base = (self.components or {}).get(BASE)
        if base is None or not base.is_fitted():
            base = make(BASE, self.market).fit(features, y)
        mask = holdout_mask(features)
        if base.holdout_pred_.size != int(mask.sum()):
            raise ContractError(f"component {BASE} was fitted on other rows than {self.system_id}")
        line, p_market = _market(features)
        self.coef_ = np.zeros(2)
        self.intercept_ = 0.0
        if mask.any():
            pred, ln, pm, act = base.holdout_pred_, line[mask], p_market[mask], y[mask]
            lined = np.isfinite(pred) & np.isfinite(ln) & np.isfinite(act)
            self.lined_rows_ = int(lined.sum())
            if self.lined_rows_ >= self.min_lined_rows:
                reg = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs")
                reg.fit(self._design(pred[lined], ln[lined], pm[lined]), act[lined] - ln[lined])
                self.coef_, self.intercept_ = np.asarray(reg.coef_, dtype=np.float64), float(reg.intercept_)
            self.holdout_pred_ = np.maximum(self._blend(pred, ln, pm), 0.0)
            self.spread_ = TierSpread.fit(self.holdout_pred_, act)
        else:
            self.lined_rows_ = 0
            self.holdout_pred_ = np.array([], dtype=np.float64)
            self.spread_ = base.spread_
        self.base_ = base
        self.holdout_mask_ = mask
        self.version_ = getattr(self, "version_", f"{self.system_id}:{self.market}:unsaved")
        return self

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:  # pragma: no cover - fit is overridden
        raise NotImplementedError

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        line, p_market = _market(features)
        return self._blend(self.base_._values(features), line, p_market)


def _market(features: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The market columns of ``features`` (all NaN when the table has none: no line known)."""
    if "market_line" not in features.column_names:
        nan = np.full(features.num_rows, np.nan)
        return nan, nan
    return column(features, "market_line"), column(features, "market_p_over")
