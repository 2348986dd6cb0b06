"""``ensemble``: a non-negative blend of the other systems, weighted on their out-of-sample errors.

The weights solve non-negative least squares between the components' *holdout* predictions (made by
components fitted without those dates, see :class:`~nbaprops.systems.base.PredictionSystem`) and the actual
values, then are normalised to sum to one. Self-reported confidence plays no part. Where a component cannot
predict a row, the remaining weights are renormalised.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import pyarrow as pa
from scipy.optimize import nnls

from nbaprops.errors import ContractError
from nbaprops.systems.base import PredictionSystem, SystemOutput, clip_counts, holdout_mask
from nbaprops.systems.components import make_component
from nbaprops.systems.spread import TierSpread

COMPONENTS = ("moving_average", "matchup", "similarity", "gbm")


class Ensemble(PredictionSystem):
    """Non-negative blend of the four components, weighted on their holdout predictions.

    Args:
        components: already fitted components by ``system_id`` (fitted on the same rows), reused instead of
            fitting them again; the missing ones are fitted with their default settings.
    """

    system_id = "ensemble"
    requires = COMPONENTS

    def __init__(
        self, *, market: str = "points", components: Mapping[str, PredictionSystem] | None = None
    ) -> None:
        super().__init__(market=market)
        self.components = components

    def fit(self, features: pa.Table, actual: np.ndarray, *, version: str | None = None) -> Self:
        y = np.asarray(actual, dtype=np.float64)
        comps = dict(self.components or {})
        for name in COMPONENTS:
            if name not in comps or not comps[name].is_fitted():
                comps[name] = make_component(name, self.market).fit(features, y)
        mask = holdout_mask(features)
        if not mask.any():
            raise ContractError("ensemble needs a holdout: training rows must span at least 5 dates")
        for name, comp in comps.items():
            if comp.holdout_pred_.size != int(mask.sum()):
                raise ContractError(f"component {name} was fitted on other rows than the ensemble")
        preds = np.column_stack([comps[name].holdout_pred_ for name in COMPONENTS])
        ok = np.isfinite(preds).all(axis=1) & np.isfinite(y[mask])
        weights, _ = nnls(preds[ok], y[mask][ok])
        if weights.sum() <= 0:
            weights = np.full(len(COMPONENTS), 1.0 / len(COMPONENTS))
        self.weights_ = weights / weights.sum()
        self.components_ = comps
        self.holdout_mask_ = mask
        self.holdout_pred_ = self._blend(preds)
        self.spread_ = TierSpread.fit(self.holdout_pred_, y[mask])
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
        """A copy that blends ``components`` (the refitted components) with this one's weights."""
        self._check_fitted()
        if components is None or any(name not in components for name in COMPONENTS):
            raise ContractError("an ensemble is refitted with its refitted components")
        out = copy.copy(self)
        out.components_ = {name: components[name] for name in COMPONENTS}
        out.version_ = out._version(version)
        return out

    def _blend(self, preds: np.ndarray) -> np.ndarray:
        ok = np.isfinite(preds)
        w = np.where(ok, self.weights_, 0.0)
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (np.nan_to_num(preds) * w).sum(axis=1) / total, np.nan)

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:  # pragma: no cover - fit is overridden
        raise NotImplementedError

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        return self.blend({name: self.components_[name]._values(features) for name in COMPONENTS})

    def blend(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The blend of the components' values for the same rows (each as its ``_values`` gives them)."""
        return self._blend(np.column_stack([values[name] for name in COMPONENTS]))


def predict_shared(
    systems: Mapping[str, PredictionSystem], system_ids: Sequence[str], features: pa.Table
) -> dict[str, SystemOutput]:
    """The outputs of ``system_ids`` on the same rows, each fitted system predicted once: the ensemble blends
    the values its components already gave (identical to predicting each system on its own, at a fraction of
    the cost when the components are among ``system_ids``)."""
    memo: dict[int, np.ndarray] = {}

    def values(system: PredictionSystem) -> np.ndarray:
        if id(system) not in memo:
            system._check_fitted()
            memo[id(system)] = system._values(features)
        return memo[id(system)]

    out: dict[str, SystemOutput] = {}
    for sid in system_ids:
        system = systems[sid]
        if isinstance(system, Ensemble):
            system._check_fitted()
            value = clip_counts(system.blend({name: values(system.components_[name]) for name in COMPONENTS}))
        else:
            value = values(system)
        out[sid] = system.output(value)
    return out
