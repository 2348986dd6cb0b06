"""``market_blend``: start from the sportsbook line, move it only as far as the model has earned.

The line posted before tip-off is public and, measured on real PRA lines, closer to the outcome than any
line-free system (docs/backtest.md). This system predicts, where a line exists,

    line + a × (gbm − line) + b × (P_market(over) − 0.5) [+ d × unlined / 10] + c

with ``gbm`` the line-free model's out-of-sample prediction, ``P_market(over)`` the book's de-vigged
probability and, with ``use_availability``, ``unlined`` the minutes of the team's regulars who have no line
tonight (0 when the game has too few lines to tell), all from :mod:`nbaprops.features.market`. The
coefficients minimise the absolute error (median regression) on the held-out training rows that had a line —
the model's errors there are out of sample — and stay 0 until ``min_lined_rows`` such rows exist, so a season
without lined history predicts the line itself. The correction must also earn its place out of time: fitted
on the earlier ``1 - VALIDATION_SHARE`` of those rows' dates, it has to beat the line by ``min_gain``
(relative MAE) on the later ones, or the coefficients stay 0. Without a line it falls back to ``gbm``.

Defaults are what the walk-forward measured on both PRA seasons (docs/backtest.md): every correction tried —
the model term, the de-vigged price, the availability term, validated with a 0% or 1% margin — missed by
0.0003 to 0.007 more than the line on the same rows; with the 3% margin no correction passes, and the system
predicts the line itself where there is one. The availability term is off (it cost 0.003–0.005).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import ClassVar, Self

import numpy as np
import pyarrow as pa
from sklearn.linear_model import QuantileRegressor

from nbaprops.errors import ContractError
from nbaprops.features.market import MARKET_COLUMNS
from nbaprops.systems.base import PredictionSystem, column, holdout_mask
from nbaprops.systems.components import make_component
from nbaprops.systems.spread import TierSpread

BASE = "gbm"
VALIDATION_SHARE = 0.4


class MarketBlend(PredictionSystem):
    """The line, corrected by the model where the model has earned it (see the module docstring)."""

    system_id = "market_blend"
    requires: ClassVar[tuple[str, ...]] = (BASE,)

    def __init__(
        self,
        *,
        market: str = "points",
        components: dict[str, PredictionSystem] | None = None,
        min_lined_rows: int = 200,
        min_gain: float = 0.03,
        use_availability: bool = False,
    ) -> None:
        super().__init__(market=market)
        self.components = components
        self.min_lined_rows = min_lined_rows
        self.min_gain = min_gain
        self.use_availability = use_availability

    def _design(self, base: np.ndarray, market: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        line, p_market, unlined = market
        availability = (
            np.where(np.isfinite(unlined), unlined / 10.0, 0.0)
            if self.use_availability
            else np.zeros_like(line)
        )
        return np.column_stack(
            [base - line, np.where(np.isfinite(p_market), p_market - 0.5, 0.0), availability]
        )

    def _blend(self, base: np.ndarray, market: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        line = market[0]
        shift = self._design(base, market) @ self.coef_ + self.intercept_
        shift = np.where(np.isfinite(base), shift, 0.0)  # no model value: the line alone
        return np.where(np.isfinite(line), line + shift, base)

    def fit(self, features: pa.Table, actual: np.ndarray, *, version: str | None = None) -> Self:
        y = np.asarray(actual, dtype=np.float64)
        if features.num_rows != y.size:
            raise ContractError(f"{features.num_rows} feature rows but {y.size} actual values")
        base = (self.components or {}).get(BASE)
        if base is None or not base.is_fitted():
            base = make_component(BASE, self.market).fit(features, y)
        mask = holdout_mask(features)
        if base.holdout_pred_.size != int(mask.sum()):
            raise ContractError(f"component {BASE} was fitted on other rows than {self.system_id}")
        market = _market(features)
        self.coef_ = np.zeros(3)
        self.intercept_ = 0.0
        self.validation_: dict[str, float | int | None] = {"rows": 0, "line_mae": None, "blend_mae": None}
        if mask.any():
            pred, act = base.holdout_pred_, y[mask]
            held = (market[0][mask], market[1][mask], market[2][mask])
            lined = np.isfinite(pred) & np.isfinite(held[0]) & np.isfinite(act)
            self.lined_rows_ = int(lined.sum())
            if self.lined_rows_ >= self.min_lined_rows:
                x = self._design(pred[lined], (held[0][lined], held[1][lined], held[2][lined]))
                target = act[lined] - held[0][lined]
                dates = np.asarray(
                    features.filter(pa.array(mask))
                    .column("game_date")
                    .cast(pa.int32())
                    .to_numpy(zero_copy_only=False)
                )[lined]
                cut = np.quantile(dates, 1 - VALIDATION_SHARE)
                early, late = dates < cut, dates >= cut
                self.validation_ = {"rows": int(late.sum()), "line_mae": None, "blend_mae": None}
                if early.sum() >= self.min_lined_rows // 2 and late.any():
                    trial = _median_fit(x[early], target[early])
                    line_mae = float(np.mean(np.abs(target[late])))
                    blend_mae = float(np.mean(np.abs(target[late] - trial(x[late]))))
                    self.validation_ = {"rows": int(late.sum()), "line_mae": line_mae, "blend_mae": blend_mae}
                    if blend_mae < (1.0 - self.min_gain) * line_mae:
                        reg = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x, target)
                        self.coef_ = np.asarray(reg.coef_, dtype=np.float64)
                        self.intercept_ = float(reg.intercept_)
            self.holdout_pred_ = np.maximum(self._blend(pred, held), 0.0)
            self.spread_ = TierSpread.fit(self.holdout_pred_, act)
        else:
            self.lined_rows_ = 0
            self.holdout_pred_ = np.array([], dtype=np.float64)
            self.spread_ = base.spread_
        self.base_ = base
        self.holdout_mask_ = mask
        self.version_ = self._version(version)
        return self

    def refit(
        self,
        features: pa.Table,
        actual: np.ndarray,
        *,
        version: str | None = None,
        components: Mapping[str, PredictionSystem] | None = None,
    ) -> Self:
        """A copy that corrects the line from the refitted ``components[BASE]`` by this one's correction (what
        it learned on the holdout, as its spread)."""
        self._check_fitted()
        if components is None or BASE not in components:
            raise ContractError(f"{self.system_id} is refitted with its refitted {BASE}")
        out = copy.copy(self)
        out.base_ = components[BASE]
        out.version_ = out._version(version)
        return out

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:  # pragma: no cover - fit is overridden
        raise NotImplementedError

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        return self._blend(self.base_._values(features), _market(features))


def _median_fit(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    reg = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x, y)
    return lambda rows: np.asarray(reg.predict(rows), dtype=np.float64)


def _market(features: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line, de-vigged P(over) and unlined regulars' minutes of ``features`` (NaN where not known)."""
    nan = np.full(features.num_rows, np.nan)
    return tuple(
        column(features, name) if name in features.column_names else nan  # type: ignore[return-value]
        for name in MARKET_COLUMNS
    )
