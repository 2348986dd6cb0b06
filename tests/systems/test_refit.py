"""``refit``: a fitted system's model fitted anew on a later window, keeping what it learned out of sample (the
walk-forward backtest's steps between two holdout fits)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from nbaprops.errors import ContractError
from nbaprops.features.builder import build_training_set
from nbaprops.storage import open_storage
from nbaprops.systems import make
from nbaprops.systems.base import PredictionSystem, column
from nbaprops.systems.ensemble import COMPONENTS

RANGE = (date(2024, 11, 1), date(2025, 2, 1))
FIRST = (date(2024, 11, 1), date(2025, 1, 10))
LATER = (date(2024, 11, 8), date(2025, 1, 17))
TEST = (date(2025, 1, 17), date(2025, 1, 24))


def _between(table: pa.Table, start: date, end: date) -> pa.Table:
    d = table.column("game_date")
    return table.filter(pc.and_(pc.greater_equal(d, pa.scalar(start)), pc.less(d, pa.scalar(end))))


@pytest.fixture(scope="module")
def training(loaded_db_file: Path) -> pa.Table:
    with open_storage(loaded_db_file, read_only=True) as storage:
        return build_training_set(storage, *RANGE)


@pytest.fixture(scope="module")
def fitted(training: pa.Table) -> dict[str, PredictionSystem]:
    """The four components and the ensemble, fitted on the first window (as ``fit_market`` fits them)."""
    window = _between(training, *FIRST)
    actual = column(window, "actual_pts")
    out: dict[str, PredictionSystem] = {}
    for sid in COMPONENTS:
        out[sid] = make(sid, "points").fit(window, actual, version=f"{sid}@first")
    out["ensemble"] = make("ensemble", "points", components=dict(out)).fit(
        window, actual, version="ensemble@first"
    )
    return out


@pytest.mark.parametrize("sid", ["moving_average", "matchup", "similarity", "gbm"])
def test_a_refit_is_the_later_windows_model_with_the_earlier_out_of_sample_errors(
    training: pa.Table, fitted: dict[str, PredictionSystem], sid: str
) -> None:
    later, test = _between(training, *LATER), _between(training, *TEST)
    system = fitted[sid]
    before = system.predict(test).predicted_value.copy()
    refit = system.refit(later, column(later, "actual_pts"), version=f"{sid}@later")
    # Its model is a fit on every row of the later window ...
    alone = make(sid, "points")
    alone._fit(later, column(later, "actual_pts"))
    np.testing.assert_array_equal(refit._values(test), alone._values(test))
    # ... its spread and holdout those learned out of sample by the earlier fit, and the earlier fit unchanged.
    assert refit.spread_ is system.spread_ and refit.holdout_pred_ is system.holdout_pred_
    assert refit.version_ == f"{sid}@later" and system.version_ == f"{sid}@first"
    np.testing.assert_array_equal(system.predict(test).predicted_value, before)
    if sid != "moving_average":  # moving_average learns nothing from the rows: the same values
        assert not np.array_equal(refit._values(test), before, equal_nan=True)


def test_a_refitted_ensemble_blends_the_refitted_components_with_its_weights(
    training: pa.Table, fitted: dict[str, PredictionSystem]
) -> None:
    later, test = _between(training, *LATER), _between(training, *TEST)
    actual = column(later, "actual_pts")
    components = {sid: fitted[sid].refit(later, actual) for sid in COMPONENTS}
    ensemble = fitted["ensemble"]
    refit = ensemble.refit(later, actual, version="ensemble@later", components=components)
    assert np.array_equal(refit.weights_, ensemble.weights_)  # type: ignore[attr-defined]
    blend = ensemble.blend({sid: components[sid]._values(test) for sid in COMPONENTS})  # type: ignore[attr-defined]
    np.testing.assert_array_equal(refit._values(test), np.maximum(blend, 0.0))
    assert not np.array_equal(refit._values(test), ensemble._values(test), equal_nan=True)
    with pytest.raises(ContractError):
        ensemble.refit(later, actual)


def test_a_refitted_market_blend_corrects_the_line_from_the_refitted_gbm(
    training: pa.Table, fitted: dict[str, PredictionSystem]
) -> None:
    first, later, test = _between(training, *FIRST), _between(training, *LATER), _between(training, *TEST)
    blend = make("market_blend", "points", components={"gbm": fitted["gbm"]}).fit(
        first, column(first, "actual_pts")
    )
    gbm = fitted["gbm"].refit(later, column(later, "actual_pts"))
    refit = blend.refit(later, column(later, "actual_pts"), components={"gbm": gbm})
    assert refit.base_ is gbm and refit.spread_ is blend.spread_  # type: ignore[attr-defined]
    np.testing.assert_array_equal(refit.coef_, blend.coef_)  # type: ignore[attr-defined]
    # No line in these rows: the blend is its base's value.
    np.testing.assert_array_equal(refit._values(test), gbm._values(test))
    with pytest.raises(ContractError):
        blend.refit(later, column(later, "actual_pts"))
