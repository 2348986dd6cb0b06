"""``gbm`` on shared bins (the walk-forward backtest): a training set binned once, each fit takes its rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nbaprops.features.builder import build_training_set
from nbaprops.storage import open_storage
from nbaprops.systems.base import column
from nbaprops.systems.gbm import ROW_ID, GradientBoosting, SharedBins, matrix, using_bins, with_row_ids

RANGE = (date(2024, 11, 1), date(2025, 2, 10))
FIRST = date(2025, 1, 1)  # the reference: rows before it
LATER = (date(2024, 11, 20), date(2025, 1, 25))  # a later window, past the reference's end
TEST = (date(2025, 1, 25), date(2025, 2, 10))


def _between(table: pa.Table, start: date, end: date) -> pa.Table:
    d = table.column("game_date")
    return table.filter(pc.and_(pc.greater_equal(d, pa.scalar(start)), pc.less(d, pa.scalar(end))))


@pytest.fixture(scope="module")
def training(loaded_db_file: Path) -> pa.Table:
    with open_storage(loaded_db_file, read_only=True) as storage:
        return with_row_ids(build_training_set(storage, *RANGE))


def _before_first(training: pa.Table) -> np.ndarray:
    return np.asarray(pc.less(training.column("game_date"), pa.scalar(FIRST)).to_numpy(zero_copy_only=False))


@pytest.fixture(scope="module")
def bins(training: pa.Table) -> SharedBins:
    return SharedBins(training, _before_first(training), "pts")


def _fit(rows: pa.Table) -> GradientBoosting:
    system = GradientBoosting()
    system._fit(rows, column(rows, "actual_pts"))
    return system


def test_a_fit_on_the_reference_rows_is_the_fit_without_shared_bins(
    training: pa.Table, bins: SharedBins
) -> None:
    """The first window's rows are the rows the bins were learned on: the same model as binning them itself."""
    window, test = _between(training, RANGE[0], FIRST), _between(training, *TEST)
    with using_bins(bins):
        shared = _fit(window)
    alone = _fit(window)
    assert isinstance(shared.model_, lgb.Booster) and isinstance(alone.model_, lgb.LGBMRegressor)
    assert np.array_equal(shared._predict_values(test), alone._predict_values(test), equal_nan=True)


def test_a_later_window_takes_its_own_rows_binned_at_the_references_boundaries(
    training: pa.Table, bins: SharedBins
) -> None:
    window, test = _between(training, *LATER), _between(training, *TEST)
    with using_bins(bins):
        shared = _fit(window)
    # The same rows binned from scratch with the reference rows' boundaries, trained with LightGBM's own API.
    x, y = matrix(training), column(training, "actual_pts")
    ok = np.isfinite(y) & np.isfinite(column(training, "pts_avg10"))
    ref_rows = ok & _before_first(training)
    ids = np.asarray(window.column(ROW_ID).to_numpy())
    fit_rows = ids[ok[ids]]
    reference = lgb.Dataset(x[ref_rows], params=bins.params).construct()
    expected = lgb.train(
        bins.params, lgb.Dataset(x[fit_rows], y[fit_rows], reference=reference, params=bins.params), 100
    )
    assert np.array_equal(shared.model_.predict(matrix(test)), expected.predict(matrix(test)))
    # ...which is not the model of the window binned on its own rows (the boundaries do move).
    assert not np.array_equal(
        shared._predict_values(test), _fit(window)._predict_values(test), equal_nan=True
    )


def test_rows_without_row_ids_or_other_bin_settings_bin_themselves(
    training: pa.Table, bins: SharedBins
) -> None:
    window = _between(training, *LATER)
    with using_bins(bins):
        assert isinstance(_fit(window.drop_columns([ROW_ID])).model_, lgb.LGBMRegressor)
        other = GradientBoosting(max_bin=31)
        other._fit(window, column(window, "actual_pts"))
        assert isinstance(other.model_, lgb.LGBMRegressor)
