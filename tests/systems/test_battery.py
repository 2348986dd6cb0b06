"""One battery over every registered system (STYLE.md convention 6), on real player-games."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nbaprops.errors import ContractError, InputError, NotFittedError
from nbaprops.features.builder import build_training_set
from nbaprops.storage import open_storage
from nbaprops.systems import SYSTEM_IDS, make

TRAIN = (date(2024, 12, 1), date(2025, 1, 20))
TEST = (date(2025, 1, 20), date(2025, 2, 1))


@pytest.fixture(scope="module")
def data(loaded_db_file: Path) -> tuple[pa.Table, np.ndarray, pa.Table, np.ndarray]:
    with open_storage(loaded_db_file, read_only=True) as storage:
        train = build_training_set(storage, *TRAIN)
        test = build_training_set(storage, *TEST)
    return (train, np.asarray(train.column("actual_pts").to_numpy(), float),
            test, np.asarray(test.column("actual_pts").to_numpy(), float))


@pytest.fixture(scope="module")
def fitted(data: tuple[pa.Table, np.ndarray, pa.Table, np.ndarray]) -> dict[str, object]:
    train, y, _, _ = data
    return {sid: make(sid, "points").fit(train, y) for sid in SYSTEM_IDS}


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_predict_before_fit_is_refused(system_id: str, data: tuple) -> None:
    with pytest.raises(NotFittedError):
        make(system_id, "points").predict(data[2])


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_predictions_are_finite_with_a_positive_spread(system_id: str, fitted: dict, data: tuple) -> None:
    _, _, test, actual = data
    out = fitted[system_id].predict(test)
    assert out.predicted_value.shape == out.predicted_std.shape == (test.num_rows,)
    has_history = np.isfinite(np.asarray(test.column("pts_avg10").to_numpy(zero_copy_only=False), float))
    assert np.isfinite(out.predicted_value[has_history]).all()
    assert (out.predicted_std[has_history] > 0).all()
    assert out.model_version.startswith(system_id)
    # Better than predicting everyone's mean: the system uses the features.
    ok = has_history
    mae = np.mean(np.abs(out.predicted_value[ok] - actual[ok]))
    assert mae < np.mean(np.abs(actual[ok].mean() - actual[ok])) * 0.8


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_fit_is_deterministic(system_id: str, fitted: dict, data: tuple) -> None:
    train, y, test, _ = data
    # The ensemble refits only its blend here (its components' determinism is tested on their own).
    params = {"components": dict(fitted)} if system_id == "ensemble" else {}
    again = make(system_id, "points", **params).fit(train, y).predict(test)
    np.testing.assert_array_equal(again.predicted_value, fitted[system_id].predict(test).predicted_value)


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_a_row_does_not_depend_on_the_other_rows(system_id: str, fitted: dict, data: tuple) -> None:
    test = data[2]
    full = fitted[system_id].predict(test).predicted_value
    idx = np.arange(0, test.num_rows, 7)
    part = fitted[system_id].predict(test.take(pa.array(idx))).predicted_value
    np.testing.assert_allclose(part, full[idx], rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_spread_is_learned_out_of_sample(system_id: str, fitted: dict) -> None:
    system = fitted[system_id]
    assert system.holdout_mask_.any() and system.holdout_pred_.size == int(system.holdout_mask_.sum())
    assert system.spread_.n > 0 and len(system.spread_.stds) >= 1


def test_mismatched_rows_and_unknown_system_are_refused(data: tuple) -> None:
    train, y, _, _ = data
    with pytest.raises(ContractError):
        make("moving_average").fit(train, y[:-1])
    with pytest.raises(InputError, match="choose from moving_average, matchup"):
        make("crystal_ball")


def test_ensemble_weights_are_non_negative_and_sum_to_one(fitted: dict) -> None:
    weights = fitted["ensemble"].weights_
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)


def test_shared_prediction_equals_each_system_alone(fitted: dict, data: tuple) -> None:
    """predict_shared predicts each component once for the ensemble too, and gives the same values."""
    from nbaprops.systems.ensemble import COMPONENTS, predict_shared

    train, y, test, _ = data
    systems = {sid: fitted[sid] for sid in COMPONENTS}
    systems["ensemble"] = make("ensemble", "points", components=dict(systems)).fit(train, y)
    shared = predict_shared(systems, list(systems), test)
    for sid, system in systems.items():
        alone = system.predict(test)
        np.testing.assert_array_equal(shared[sid].predicted_value, alone.predicted_value)
        np.testing.assert_array_equal(shared[sid].predicted_std, alone.predicted_std)
        assert shared[sid].model_version == alone.model_version
