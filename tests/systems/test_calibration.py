"""Calibration: P(over) is a monotone increasing function of the standardized edge, or nothing is bet."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, ndtr
from sklearn.linear_model import LogisticRegression

from nbaprops.systems.betting import recommend
from nbaprops.systems.calibration import MIN_ROWS, Calibrator, standardized_edge

GRID = np.linspace(-3, 3, 61)


def _outcomes(z: np.ndarray, p_over: np.ndarray, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=z.size) < p_over).astype(float)


def test_standardized_edge() -> None:
    z = standardized_edge(
        np.array([24.7, 10.0, np.nan, 20.0]),
        np.array([5.0, 2.0, 3.0, 0.0]),
        np.array([17.5, 12.0, 15.0, 19.5]),
    )
    np.testing.assert_allclose(z[:2], [1.44, -1.0])
    assert np.isnan(z[2]) and np.isnan(z[3])  # no prediction; no spread


def test_calibrated_p_over_rises_with_the_edge_and_matches_maximum_likelihood() -> None:
    z = np.random.default_rng(1).normal(0, 0.6, 4000)
    went_over = _outcomes(z, expit(-0.2 + 0.5 * z))  # overs rarer than unders, edge informative
    cal = Calibrator.fit(z, went_over)
    assert cal.method == "logistic" and cal.allows_bets
    assert cal.slope_lower > 0 and cal.p_value < 0.05
    reference = LogisticRegression(C=np.inf).fit(z.reshape(-1, 1), went_over.astype(int))
    assert cal.slope == pytest.approx(reference.coef_[0, 0], abs=1e-4)
    assert cal.intercept == pytest.approx(reference.intercept_[0], abs=1e-4)
    p = cal.transform(GRID)
    assert np.all(np.diff(p) > 0)
    assert "rises with the edge" in cal.reason


def test_calibration_fixes_an_overconfident_spread() -> None:
    z = np.random.default_rng(2).normal(0, 1.0, 5000)
    went_over = _outcomes(z, ndtr(z / 2))  # the normal model's Phi(z) is twice too sure
    cal = Calibrator.fit(z, went_over)
    fixed = cal.transform(z, ndtr(z))
    assert np.mean((fixed - went_over) ** 2) < np.mean((ndtr(z) - went_over) ** 2)


def test_calibrator_refuses_an_inversion() -> None:
    """Outcomes that go against the edge: a free map would learn to bet against the model; this one refuses."""
    z = np.random.default_rng(3).normal(0, 0.6, 4000)
    went_over = _outcomes(z, expit(-0.4 * z))
    cal = Calibrator.fit(z, went_over)
    assert cal.slope < 0
    assert cal.method == "no_signal" and not cal.allows_bets
    p = cal.transform(GRID)
    assert np.all(np.diff(p) >= 0)  # never decreasing in the edge
    assert p[0] == pytest.approx(went_over.mean(), abs=1e-9) == pytest.approx(p[-1], abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_no_relation_means_every_recommendation_is_pass_and_says_why(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 0.6, 3000)
    went_over = _outcomes(z, np.full(z.size, 0.45), seed)  # unders hit more, whatever the model says
    cal = Calibrator.fit(z, went_over)
    assert cal.method == "no_signal" and not cal.allows_bets
    assert cal.slope_lower <= 0 and "no relation" in cal.reason
    assert cal.summary()["reason"] == cal.reason
    predicted = 20.0 + 5.0 * z
    line = np.full(z.size, 20.0)
    price = np.full(z.size, 150.0)  # generous prices: only the missing relation stops the bets
    recs = recommend(
        ndtr(z),
        cal.transform(z),
        line,
        price,
        price,
        predicted=predicted,
        margin=0.02,
        allow_bets=cal.allows_bets,
    )
    assert set(recs.recommendation) == {"PASS"}


def test_too_few_rows_means_no_calibration_and_no_bets() -> None:
    z = np.linspace(-1, 1, MIN_ROWS - 1)
    cal = Calibrator.fit(z, (z > 0).astype(float))
    assert cal.method == "none" and not cal.allows_bets and str(MIN_ROWS) in cal.reason
    np.testing.assert_allclose(cal.transform(z), ndtr(z))


def test_constant_outcome_is_no_signal() -> None:
    z = np.random.default_rng(4).normal(0, 1, 200)
    cal = Calibrator.fit(z, np.zeros(z.size))
    assert cal.method == "no_signal" and not cal.allows_bets
    assert np.all(cal.transform(GRID) < 0.05)
