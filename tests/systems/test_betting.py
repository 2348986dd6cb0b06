"""Prices and recommendations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbaprops.systems.betting import implied, payout, recommend
from nbaprops.systems.spread import TierSpread, p_over


def test_american_odds() -> None:
    np.testing.assert_allclose(payout(np.array([-110.0, 150.0, 100.0])), [100 / 110, 1.5, 1.0])
    assert implied(np.array([-110.0]))[0] == pytest.approx(110 / 210)


def test_recommendations_follow_expected_value_and_never_invent_lines() -> None:
    p = np.array([0.62, 0.40, 0.51, 0.70, 0.70, 0.62])
    line = np.array([20.5, 20.5, 20.5, np.nan, 20.5, 20.5])
    predicted = np.array([24.0, 17.0, 21.0, 25.0, 25.0, np.nan])
    over = np.array([-110.0, -110.0, -110.0, -110.0, np.nan, -110.0])
    under = np.array([-110.0, -110.0, -110.0, -110.0, np.nan, -110.0])
    recs = recommend(p, p, line, over, under, predicted=predicted, margin=0.02)
    # 0.62 * 0.909 - 0.38 = 0.18 > margin: OVER; 0.60 under: UNDER; 0.51 is below break-even: PASS;
    # no line: NO_LINE; no price: PASS (never bet a side without a price); no prediction: PASS.
    assert recs.recommendation == ["OVER", "UNDER", "PASS", "NO_LINE", "PASS", "PASS"]
    assert recs.expected_value[0] == pytest.approx(0.62 * 100 / 110 - 0.38)
    assert recs.confidence_score[1] == pytest.approx(0.60)
    assert np.isnan(recs.confidence_score[3]) and np.isnan(recs.confidence_score[5])


def test_a_bet_never_points_against_the_models_edge() -> None:
    """The issue's case: predicted 24.7 against 17.5, calibrated P(over) 0.37 → not UNDER (nor OVER at 0.37)."""
    p = np.array([0.37, 0.70, 0.80, 0.20])
    line = np.array([17.5, 17.5, 17.5, 17.5])
    predicted = np.array([24.7, 12.0, 17.5, 17.5])  # above; below with a high P(over); on the line twice
    price = np.full(4, -110.0)
    recs = recommend(p, p, line, price, price, predicted=predicted, margin=0.02)
    assert recs.recommendation == ["PASS"] * 4
    # Nothing is bet, so no expected value is reported (issue 18 item 5: the board showed and sorted by the EV of
    # PASS rows; before, row 0 carried the over's -0.29 and row 1 the under's -0.43).
    assert np.isnan(recs.expected_value).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 1.0),
            st.floats(0.0, 60.0),
            st.floats(0.0, 60.0),
            st.sampled_from([-250.0, -110.0, 100.0, 120.0, 300.0]),
            st.sampled_from([-250.0, -110.0, 100.0, 120.0, 300.0]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_recommendations_agree_with_the_edge_for_any_probability(
    rows: list[tuple[float, ...]], allow: bool
) -> None:
    p, line, predicted, over, under = (np.array(col) for col in zip(*rows, strict=True))
    recs = recommend(p, p, line, over, under, predicted=predicted, margin=0.0, allow_bets=allow)
    rec = np.array(recs.recommendation)
    assert not np.any((rec == "OVER") & (predicted <= line))
    assert not np.any((rec == "UNDER") & (predicted >= line))
    if not allow:
        assert set(recs.recommendation) <= {"PASS"}
    # An expected value exactly where a side is recommended.
    assert (np.isfinite(recs.expected_value) == np.isin(rec, ["OVER", "UNDER"])).all()


def test_spread_by_tier_and_p_over() -> None:
    rng = np.random.default_rng(1)
    pred = rng.uniform(0, 30, 2000)
    actual = pred + rng.normal(0, 1 + pred / 10)
    spread = TierSpread.fit(pred, actual)
    assert spread.stds[0] < spread.stds[-1]  # bigger scorers miss by more
    assert p_over(np.array([20.0]), np.array([5.0]), np.array([20.0]))[0] == pytest.approx(0.5)
    assert p_over(np.array([25.0]), np.array([5.0]), np.array([20.0]))[0] == pytest.approx(0.8413, abs=1e-4)
