"""The prediction-system contract (scikit-learn's estimator contract, STYLE.md convention 6).

- Settings are keyword-only constructor arguments (``market`` plus the system's own, e.g. ``shrink``), each
  stored unchanged as the attribute of the same name; the constructor does nothing else (no validation, no
  derived attribute). :meth:`~PredictionSystem.get_params` reads them back by inspecting the signature, so
  ``make(system_id, **system.get_params())`` builds an identical unfitted system.
- ``fit(features, actual, *, version=None)`` learns into attributes ending in ``_`` (``version_`` among them:
  the name of the artifact, given by whoever stores it) and returns ``self``. ``features`` is a
  ``pyarrow.Table`` holding the columns of :mod:`nbaprops.features.columns`; ``actual`` the realised stat.
- ``predict(features)`` returns a :class:`SystemOutput` (value and out-of-sample error spread per row) and
  raises :class:`NotFittedError` before ``fit``. Subclasses implement ``_fit`` and ``_predict_values``.
- Every system registers under a stable ``system_id`` in :data:`nbaprops.systems.REGISTRY` (the package's
  ``__init__``) and one test battery (``tests/systems/test_battery.py``) runs over all of them.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa

from nbaprops.errors import ContractError, NotFittedError
from nbaprops.markets import MARKET_STAT
from nbaprops.systems.spread import TierSpread


@dataclass(frozen=True)
class SystemOutput:
    """One system's predictions for a set of rows.

    Attributes:
        predicted_value: predicted stat per row (float64; NaN where the system cannot predict the row).
        predicted_std: spread of the prediction error per row, learned out of sample (float64, > 0).
        model_version: names the artifact or rule that produced the values.
    """

    predicted_value: np.ndarray
    predicted_std: np.ndarray
    model_version: str


HOLDOUT_SHARE = 0.2  # last fifth of the training dates: out-of-sample errors for the spread and the ensemble
MIN_HOLDOUT_ROWS = 200


def holdout_mask(features: pa.Table) -> np.ndarray:
    """Rows of the last ``HOLDOUT_SHARE`` of the distinct game dates (all False when too few rows)."""
    dates = np.asarray(features.column("game_date").cast(pa.int32()).to_numpy(zero_copy_only=False))
    uniq = np.unique(dates)
    if uniq.size < 5:
        return np.zeros(dates.size, dtype=bool)
    cut = uniq[int(np.floor(uniq.size * (1 - HOLDOUT_SHARE)))]
    mask = dates >= cut
    return mask if MIN_HOLDOUT_ROWS <= mask.sum() < dates.size else np.zeros(dates.size, dtype=bool)


class PredictionSystem(ABC):
    """Base of every prediction system.

    :meth:`fit` is a template: when the rows span enough dates it first fits on all but the last fifth of the
    dates and predicts that fifth (``holdout_pred_``), so the error spread per tier (``spread_``) and the
    ensemble's weights are learned out of sample; then it fits again on every row.
    """

    system_id: ClassVar[str]
    trainable: ClassVar[bool] = True
    # Systems this one is built on; training fits them first and passes them as ``components``.
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, market: str = "points") -> None:
        self.market = market

    @classmethod
    def _param_names(cls) -> tuple[str, ...]:
        """The settings: the keyword-only arguments of the constructor, in declaration order.

        Raises:
            TypeError: the constructor takes ``*args``, ``**kwargs`` or positional arguments (settings must be
                named, or :meth:`get_params` could not return them).
        """
        names = []
        for parameter in inspect.signature(cls.__init__).parameters.values():
            if parameter.name == "self":
                continue
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(
                    f"{cls.__name__}.__init__ must take only keyword-only settings, not {parameter}"
                )
            names.append(parameter.name)
        return tuple(names)

    def get_params(self) -> dict[str, Any]:
        """The settings this system was built with (``make(system_id, **get_params())`` rebuilds it)."""
        return {name: getattr(self, name) for name in self._param_names()}

    @property
    def stat(self) -> str:
        return MARKET_STAT[self.market]

    def is_fitted(self) -> bool:
        return hasattr(self, "spread_")

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(f"{self.system_id} ({self.market}) must be fitted before predict")

    def fit(self, features: pa.Table, actual: np.ndarray, *, version: str | None = None) -> Self:
        """Learn from rows whose features were built strictly before each row's game.

        Args:
            version: names the fitted artifact (``version_``, reported as ``model_version``); default
                ``<system_id>:<market>:unsaved``.
        """
        y = np.asarray(actual, dtype=np.float64)
        if features.num_rows != y.size:
            raise ContractError(f"{features.num_rows} feature rows but {y.size} actual values")
        if features.num_rows == 0:
            raise ContractError(f"{self.system_id}: no training rows")
        mask = holdout_mask(features)
        if mask.any():
            early = np.flatnonzero(~mask)
            self._fit(features.take(early), y[early])
            pred = self._values(features.filter(pa.array(mask)))
            self.holdout_mask_ = mask
            self.holdout_pred_ = pred
            self.spread_ = TierSpread.fit(pred, y[mask])
            self._fit(features, y)
        else:
            self._fit(features, y)
            self.holdout_mask_ = mask
            self.holdout_pred_ = np.array([], dtype=np.float64)
            self.spread_ = TierSpread.fit(self._values(features), y)
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
        """A copy of this fitted system whose model is fitted anew on every row of ``features``, keeping what
        this one learned out of sample (``holdout_mask_``, ``holdout_pred_``, ``spread_``): the walk-forward
        backtest's steps between two holdout fits. ``components``: the refitted systems this one is built on
        (systems built on others override this)."""
        self._check_fitted()
        y = np.asarray(actual, dtype=np.float64)
        if features.num_rows != y.size or features.num_rows == 0:
            raise ContractError(f"{features.num_rows} feature rows but {y.size} actual values")
        out = copy.copy(self)
        out._fit(features, y)
        out.version_ = out._version(version)
        return out

    def _version(self, version: str | None) -> str:
        return version if version is not None else f"{self.system_id}:{self.market}:unsaved"

    def predict(self, features: pa.Table) -> SystemOutput:
        """Predict every row; refuses before :meth:`fit`."""
        self._check_fitted()
        return self.output(self._values(features))

    def output(self, value: np.ndarray) -> SystemOutput:
        """``value`` (this system's clipped predictions of some rows) with its spread and version."""
        self._check_fitted()
        return SystemOutput(value, self.spread_.std(value), self.version_)

    def _values(self, features: pa.Table) -> np.ndarray:
        return clip_counts(self._predict_values(features))

    @abstractmethod
    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        """Learn the system's parameters (attributes ending in ``_``)."""

    @abstractmethod
    def _predict_values(self, features: pa.Table) -> np.ndarray:
        """Predicted values (NaN where the row cannot be predicted)."""


def clip_counts(values: np.ndarray) -> np.ndarray:
    """Every market counts something (points, rebounds, threes…): a model's extrapolation below zero is
    clipped, and the spread and P(over) are learned and computed on the clipped value."""
    return np.asarray(np.maximum(values, 0.0), dtype=np.float64)


def column(features: pa.Table, name: str) -> np.ndarray:
    """A feature column as float64 with NaN for NULL."""
    return np.asarray(
        features.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
