"""``gbm``: LightGBM on every feature, L1 objective (it minimises the absolute error, the MAE we report).

Deterministic by construction: fixed seed, ``deterministic=True``, row-wise histograms, fixed thread count —
the same rows give the same model and the same predictions.

Hyperparameters were chosen on the 2023-24 season (train 2022-01..2023-12, test 2024-01..04), never on the
reported 2024-25: 100 trees at 0.12 with 63 bins gave a points MAE of 4.492 against 4.483 for 300 trees at 0.05,
in a third of the time, which a weekly-retrained full-season backtest needs.

**Shared bins (the walk-forward backtest).** LightGBM first bins every feature (63 bins at quantiles of the
training rows) and then grows trees on the bins; binning was 27-30% of a fit. The backtest fits many windows of
one training set, so it bins that set once (:class:`SharedBins`, bin boundaries learned on the rows of its
first window, which is before every step's first test date) and each fit takes its rows from it
(:func:`using_bins`; the rows are named by the :data:`ROW_ID` column of the training set). A fit then gives the
same trees as binning its own rows with those boundaries; the boundaries are the first window's instead of each
window's own, which changes predictions slightly (docs/backtest.md, "Speed, issue 21 part 4": MAE measured). The
daily batch fits without shared bins, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import lightgbm as lgb
import numpy as np
import pyarrow as pa

from nbaprops.features.columns import FEATURE_COLUMNS
from nbaprops.systems.base import PredictionSystem, column

# Not settings: what makes the model deterministic and quiet whatever the settings are.
FIXED: dict[str, Any] = {"deterministic": True, "force_row_wise": True, "verbose": -1}


ROW_ID = "__row"  # a training set's row number, for fits that take their rows from SharedBins


def matrix(features: pa.Table) -> np.ndarray:
    return np.column_stack([column(features, name) for name in FEATURE_COLUMNS])


def with_row_ids(training: pa.Table) -> pa.Table:
    """``training`` with its row numbers in :data:`ROW_ID` (what :class:`SharedBins` indexes)."""
    return training.append_column(ROW_ID, pa.array(np.arange(training.num_rows, dtype=np.int64)))


def _lgbm_params(system: GradientBoosting) -> dict[str, Any]:
    """The ``lightgbm.train`` parameters of ``LGBMRegressor`` built with ``system``'s settings (its own
    translation, ``_process_params``, a private method of lightgbm 4: the same parameters its ``fit`` trains
    with; ``tests/systems/test_shared_bins.py`` checks the models are the same)."""
    settings = {name: value for name, value in system.get_params().items() if name != "market"}
    params: dict[str, Any] = lgb.LGBMRegressor(**settings, **FIXED)._process_params(stage="fit")
    return params


class SharedBins:
    """Every row of a training set binned once by LightGBM, bins learned on ``reference`` rows only.

    Args:
        training: the training set, with :data:`ROW_ID` (:func:`with_row_ids`).
        reference: which rows the bin boundaries are learned from (the backtest: its first window).
        stat: the market's stat; rows without ``<stat>_avg10`` or an outcome are left out of the reference, as
            :class:`GradientBoosting` leaves them out of a fit.
    """

    def __init__(self, training: pa.Table, reference: np.ndarray, stat: str) -> None:
        self.params = _lgbm_params(GradientBoosting())
        actual = column(training, f"actual_{stat}")
        x = matrix(training)
        ref_rows = reference & np.isfinite(actual) & np.isfinite(column(training, f"{stat}_avg10"))
        ref = lgb.Dataset(x[ref_rows], params=self.params, free_raw_data=True).construct()
        self.dataset = lgb.Dataset(
            x, label=np.zeros(training.num_rows), reference=ref, params=self.params, free_raw_data=True
        ).construct()
        self.rows = training.num_rows

    def serves(self, params: dict[str, Any]) -> bool:
        """Whether a model with ``params`` can train on these bins (the settings that shape them are the same)."""
        return all(params.get(key) == self.params.get(key) for key in _BIN_SETTINGS)

    def fit(self, rows: np.ndarray, actual: np.ndarray, params: dict[str, Any], rounds: int) -> lgb.Booster:
        """A booster fitted on the training set's ``rows`` (row numbers, ascending) with labels ``actual``: the
        same trees as ``LGBMRegressor.fit`` on those rows binned with these boundaries."""
        subset = self.dataset.subset(rows.tolist()).construct()
        subset.set_label(actual)
        return lgb.train(params, subset, num_boost_round=rounds)


# Settings that shape a binned dataset: a model with other values bins its rows itself.
_BIN_SETTINGS = ("max_bin", "min_child_samples", "random_state", "subsample_for_bin")


_SHARED: ContextVar[SharedBins | None] = ContextVar("nbaprops_shared_bins", default=None)


@contextlib.contextmanager
def using_bins(bins: SharedBins) -> Iterator[None]:
    """Within the block, a :class:`GradientBoosting` fit on rows that carry :data:`ROW_ID` takes them from
    ``bins`` instead of binning them again."""
    token = _SHARED.set(bins)
    try:
        yield
    finally:
        _SHARED.reset(token)


class GradientBoosting(PredictionSystem):
    """LightGBM regressor; its settings are ``lightgbm.LGBMRegressor``'s, with the defaults chosen above.

    ``n_jobs`` is 1: on 2 shared cores one thread is faster than two fighting DuckDB's and each other.
    """

    system_id = "gbm"

    def __init__(
        self,
        *,
        market: str = "points",
        objective: str = "l1",
        n_estimators: int = 100,
        learning_rate: float = 0.12,
        num_leaves: int = 31,
        max_bin: int = 63,
        min_child_samples: int = 100,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        random_state: int = 7,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(market=market)
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_bin = max_bin
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, features: pa.Table, actual: np.ndarray) -> None:
        lgbm_params = {name: value for name, value in self.get_params().items() if name != "market"}
        ok = np.isfinite(actual) & np.isfinite(column(features, f"{self.stat}_avg10"))
        bins = _SHARED.get()
        if bins is not None and ROW_ID in features.column_names:
            rows = np.asarray(features.column(ROW_ID).to_numpy(zero_copy_only=False), dtype=np.int64)[ok]
            params = _lgbm_params(self)
            if rows.size and np.all(np.diff(rows) > 0) and rows[-1] < bins.rows and bins.serves(params):
                self.model_: lgb.LGBMRegressor | lgb.Booster = bins.fit(
                    rows, actual[ok], params, self.n_estimators
                )
                return
        model = lgb.LGBMRegressor(**lgbm_params, **FIXED)
        model.fit(matrix(features)[ok], actual[ok])
        self.model_ = model

    def _predict_values(self, features: pa.Table) -> np.ndarray:
        x = matrix(features)
        out = np.asarray(self.model_.predict(x), dtype=np.float64)
        # A row without any recent game is not something the model has seen: no prediction.
        return np.where(np.isfinite(column(features, f"{self.stat}_avg10")), out, np.nan)
