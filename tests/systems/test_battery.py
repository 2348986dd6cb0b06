"""One battery over every registered system (STYLE.md convention 6), on real player-games.

The contract checks follow scikit-learn's ``utils/estimator_checks.py``: settings are keyword-only constructor
arguments stored unchanged, ``get_params`` round-trips, nothing ending in ``_`` exists before ``fit``, ``fit``
leaves the settings alone and ``predict`` refuses before ``fit``.
"""

from __future__ import annotations

import inspect
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nbaprops.errors import ContractError, InputError, NotFittedError
from nbaprops.features.builder import build_training_set
from nbaprops.storage import open_storage
from nbaprops.systems import REGISTRY, SYSTEM_IDS, make
from nbaprops.systems.ensemble import COMPONENTS
from nbaprops.systems.spread import TierSpread

TRAIN = (date(2024, 12, 1), date(2025, 1, 20))
TEST = (date(2025, 1, 20), date(2025, 2, 1))
# A setting of each system that has one, at a value far from its default.
NON_DEFAULT = {"similarity": {"shrink": 1000.0}, "gbm": {"n_estimators": 5, "learning_rate": 0.3}}


@pytest.fixture(scope="module")
def data(loaded_db_file: Path) -> tuple[pa.Table, np.ndarray, pa.Table, np.ndarray]:
    with open_storage(loaded_db_file, read_only=True) as storage:
        train = build_training_set(storage, *TRAIN)
        test = build_training_set(storage, *TEST)
    return (
        train,
        np.asarray(train.column("actual_pts").to_numpy(), float),
        test,
        np.asarray(test.column("actual_pts").to_numpy(), float),
    )


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
def test_spread_is_learned_out_of_sample(system_id: str, fitted: dict, data: tuple) -> None:
    """The spread is learned on the held-out rows only, from predictions of a fit that did not see them.

    Mutations tried in ``PredictionSystem.fit``, each failing here: learning the spread in sample
    (``TierSpread.fit(self._values(features), y)`` after the final fit: ``spread_.n`` becomes the
    training rows' count), and predicting the held-out rows with the final all-rows model (``holdout_pred_`` then
    differs from the early fit's predictions for matchup, similarity and gbm; the moving average learns nothing,
    so both are the same for it). In ``Ensemble.fit``: the spread from ``self._values(features)``, and
    weights and holdout predictions from the components' final models instead of their ``holdout_pred_``.
    """
    train, y, _, _ = data
    system = fitted[system_id]
    held = system.holdout_mask_
    assert 0 < held.sum() < train.num_rows and system.holdout_pred_.size == int(held.sum())
    scored = np.isfinite(system.holdout_pred_) & np.isfinite(y[held])
    assert system.spread_.n == int(scored.sum()) > 0
    assert system.spread_ == TierSpread.fit(system.holdout_pred_, y[held])
    if system_id == "ensemble":  # its holdout predictions blend its components' (each checked here too)
        parts = np.column_stack([system.components_[name].holdout_pred_ for name in COMPONENTS])
        complete = np.isfinite(parts).all(axis=1)
        np.testing.assert_allclose(
            system.holdout_pred_[complete], parts[complete] @ system.weights_, rtol=1e-12
        )
    else:
        early = make(system_id, "points").fit(train.filter(pa.array(~held)), y[~held])
        predicted = early.predict(train.filter(pa.array(held))).predicted_value
        np.testing.assert_array_equal(system.holdout_pred_, predicted)


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_settings_are_keyword_only_constructor_arguments(system_id: str) -> None:
    """``get_params`` returns exactly the constructor's keyword-only arguments, at their defaults."""
    signature = inspect.signature(REGISTRY[system_id].__init__).parameters
    settings = {name: p for name, p in signature.items() if name != "self"}
    assert {p.kind for p in settings.values()} == {inspect.Parameter.KEYWORD_ONLY}
    assert make(system_id).get_params() == {name: p.default for name, p in settings.items()}


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_the_constructor_stores_every_setting_unchanged(system_id: str) -> None:
    """Each setting is kept as the very object given, under its own name (no copy, no validation, no default)."""
    given = {name: object() for name in make(system_id).get_params()}
    system = REGISTRY[system_id](**given)
    assert all(getattr(system, name) is value for name, value in given.items())
    assert all(system.get_params()[name] is value for name, value in given.items())


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_get_params_rebuilds_the_same_system(system_id: str) -> None:
    original = make(system_id, "pra", **NON_DEFAULT.get(system_id, {}))
    rebuilt = make(system_id, **original.get_params())
    assert type(rebuilt) is type(original) and rebuilt.get_params() == original.get_params()
    assert rebuilt.get_params()["market"] == "pra"


@pytest.mark.parametrize("system_id", SYSTEM_IDS)
def test_nothing_is_learned_before_fit_and_fit_leaves_the_settings(system_id: str, fitted: dict) -> None:
    unfitted = make(system_id, "points")
    assert [name for name in vars(unfitted) if name.endswith("_")] == []
    assert not unfitted.is_fitted()
    assert fitted[system_id].get_params() == unfitted.get_params()
    assert fitted[system_id].version_ == f"{system_id}:points:unsaved"


@pytest.mark.parametrize("system_id", sorted(NON_DEFAULT))
def test_settings_reach_the_model(system_id: str, fitted: dict, data: tuple) -> None:
    """Mutation tried: ``GradientBoosting._fit`` with the default trees whatever the settings -> fails here."""
    train, y, test, _ = data
    tuned = make(system_id, "points", **NON_DEFAULT[system_id]).fit(train, y)
    assert not np.allclose(
        tuned.predict(test).predicted_value, fitted[system_id].predict(test).predicted_value, equal_nan=True
    )


@pytest.mark.parametrize("system_id", ["moving_average", "ensemble"])  # the two fit methods
def test_fit_names_the_version(system_id: str, fitted: dict, data: tuple) -> None:
    train, y, test, _ = data
    params = {"components": dict(fitted)} if system_id == "ensemble" else {}
    system = make(system_id, "points", **params).fit(train, y, version=f"{system_id}@points-test")
    assert system.version_ == system.predict(test).model_version == f"{system_id}@points-test"


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
