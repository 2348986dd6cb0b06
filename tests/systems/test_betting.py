"""Prices, recommendations and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from nbaprops.systems.betting import implied, payout, recommend
from nbaprops.systems.calibration import Calibrator
from nbaprops.systems.spread import TierSpread, p_over


def test_american_odds() -> None:
    np.testing.assert_allclose(payout(np.array([-110.0, 150.0, 100.0])), [100 / 110, 1.5, 1.0])
    assert implied(np.array([-110.0]))[0] == pytest.approx(110 / 210)


def test_recommendations_follow_expected_value_and_never_invent_lines() -> None:
    p = np.array([0.62, 0.40, 0.51, 0.70, 0.70])
    line = np.array([20.5, 20.5, 20.5, np.nan, 20.5])
    over = np.array([-110.0, -110.0, -110.0, -110.0, np.nan])
    under = np.array([-110.0, -110.0, -110.0, -110.0, np.nan])
    recs = recommend(p, p, line, over, under, margin=0.02)
    # 0.62 * 0.909 - 0.38 = 0.18 > margin: OVER; 0.60 under: UNDER; 0.51 is below break-even: PASS;
    # no line: NO_LINE; no price: PASS (never bet a side without a price).
    assert recs.recommendation == ["OVER", "UNDER", "PASS", "NO_LINE", "PASS"]
    assert recs.expected_value[0] == pytest.approx(0.62 * 100 / 110 - 0.38)
    assert recs.confidence_score[1] == pytest.approx(0.60)
    assert np.isnan(recs.confidence_score[3])


def _overconfident(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw P(over) twice as extreme as the truth, and outcomes drawn from the truth."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.3, 0.7, rows)
    raw = np.clip(0.5 + 2 * (truth - 0.5), 0.01, 0.99)
    return raw, (rng.uniform(size=rows) < truth).astype(float)


@pytest.mark.parametrize(("rows", "method"), [(30, "none"), (500, "platt"), (5000, "isotonic")])
def test_calibration_method_depends_on_rows(rows: int, method: str) -> None:
    assert Calibrator.fit(*_overconfident(rows)).method == method


@pytest.mark.parametrize("rows", [500, 5000], ids=["platt", "isotonic"])
def test_calibration_fixes_overconfidence(rows: int) -> None:
    raw, went_over = _overconfident(rows)
    fixed = Calibrator.fit(raw, went_over).transform(raw)
    assert np.mean((fixed - went_over) ** 2) < np.mean((raw - went_over) ** 2)


def test_spread_by_tier_and_p_over() -> None:
    rng = np.random.default_rng(1)
    pred = rng.uniform(0, 30, 2000)
    actual = pred + rng.normal(0, 1 + pred / 10)
    spread = TierSpread.fit(pred, actual)
    assert spread.stds[0] < spread.stds[-1]  # bigger scorers miss by more
    assert p_over(np.array([20.0]), np.array([5.0]), np.array([20.0]))[0] == pytest.approx(0.5)
    assert p_over(np.array([25.0]), np.array([5.0]), np.array([20.0]))[0] == pytest.approx(0.8413, abs=1e-4)
