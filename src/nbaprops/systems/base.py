"""The prediction-system contract (scikit-learn's estimator contract, STYLE.md convention 6).

- The constructor only stores its keyword arguments (``market`` plus the system's settings).
- ``fit(features, actual)`` learns into attributes ending in ``_`` and returns ``self``. ``features`` is a
  ``pyarrow.Table`` holding the columns of :mod:`nbaprops.features.columns`; ``actual`` the realised stat.
- ``predict(features)`` returns a :class:`SystemOutput` (value and out-of-sample error spread per row) and
  raises :class:`NotFittedError` before ``fit``.
- Every system registers under a stable ``system_id`` (:mod:`nbaprops.systems.registry`) and one test battery
  runs over all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa

from nbaprops.errors import NotFittedError


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


class PredictionSystem(ABC):
    """Base of every prediction system."""

    system_id: ClassVar[str]
    trainable: ClassVar[bool] = True

    def __init__(self, *, market: str = "points", **params: Any) -> None:
        self.market = market
        self.params = params

    def get_params(self) -> dict[str, Any]:
        return {"market": self.market, **self.params}

    def is_fitted(self) -> bool:
        return any(name.endswith("_") and not name.startswith("_") for name in vars(self))

    def _check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(f"{self.system_id} ({self.market}) must be fitted before predict")

    @abstractmethod
    def fit(self, features: pa.Table, actual: np.ndarray) -> Self:
        """Learn from rows whose features were built strictly before each row's game."""

    @abstractmethod
    def predict(self, features: pa.Table) -> SystemOutput:
        """Predict every row; refuses before :meth:`fit`."""
