"""De-vig: known values and the properties every method keeps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nbaprops.pricing import METHODS, american_odds, fair_over, implied_probability, overround


def american(q: float) -> float:
    """American odds of implied probability q."""
    return float(american_odds(q))


# A two-way offer as implied probabilities: q_over in (0.05, 0.95), margin 0–12%.
offers = st.tuples(st.floats(0.05, 0.95), st.floats(0.0, 0.12)).map(
    lambda t: (american(t[0] * (1 + t[1])), american((1 - t[0]) * (1 + t[1])))
)


@pytest.mark.parametrize("method", METHODS)
def test_minus_110_both_sides_is_a_coin_under_every_method(method: str) -> None:
    assert fair_over(-110, -110, method) == pytest.approx(0.5, abs=1e-15)  # type: ignore[arg-type]


def test_known_prices() -> None:
    assert float(implied_probability(-110)) == pytest.approx(110 / 210)
    assert float(implied_probability(150)) == pytest.approx(0.4)
    assert float(overround(-110, -110)) == pytest.approx(2 * 110 / 210 - 1)
    # -150 / +130: q = 0.6 and 0.434783; multiplicative 0.6 / 1.034783; additive 0.6 - 0.034783 / 2.
    assert float(fair_over(-150, 130, "multiplicative")) == pytest.approx(0.6 / (0.6 + 100 / 230))
    assert float(fair_over(-150, 130, "additive")) == pytest.approx(0.6 - (0.6 + 100 / 230 - 1) / 2)


def test_power_and_shin_solve_their_defining_equations() -> None:
    q_over, q_under = float(implied_probability(-150)), float(implied_probability(130))
    p = float(fair_over(-150, 130, "power"))
    k = np.log(p) / np.log(q_over)
    assert q_over**k + q_under**k == pytest.approx(1.0, abs=1e-12)
    # Shin with two outcomes equals the additive method (Clarke, Kovalchik & Ingram 2017).
    assert float(fair_over(-150, 130, "shin")) == pytest.approx(
        float(fair_over(-150, 130, "additive")), abs=1e-12
    )


def test_missing_price_is_nan_and_unknown_method_is_refused() -> None:
    assert np.isnan(fair_over(np.nan, -110))
    with pytest.raises(ValueError, match="unknown de-vig method"):
        fair_over(-110, -110, "fancy")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(offer=offers, method=st.sampled_from(METHODS))
def test_fair_is_a_probability_and_the_pair_sums_to_one(offer: tuple[float, float], method: str) -> None:
    over, under = offer
    p_over = float(fair_over(over, under, method))  # type: ignore[arg-type]
    p_under = float(fair_over(under, over, method))  # type: ignore[arg-type]
    assert 0.0 < p_over < 1.0
    assert p_over + p_under == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(offer=offers, method=st.sampled_from(METHODS), cut=st.floats(0.001, 0.05))
def test_a_shorter_over_price_means_a_likelier_over(
    offer: tuple[float, float], method: str, cut: float
) -> None:
    over, under = offer
    q_over = float(implied_probability(over))
    assume(q_over + cut < 0.999)
    shorter = american(q_over + cut)
    assert fair_over(shorter, under, method) >= fair_over(over, under, method) - 1e-12  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(offers, min_size=1, max_size=40), method=st.sampled_from(METHODS))
def test_vectorized_equals_scalar(batch: list[tuple[float, float]], method: str) -> None:
    over = np.array([o for o, _ in batch])
    under = np.array([u for _, u in batch])
    whole = fair_over(over, under, method)  # type: ignore[arg-type]
    one_by_one = np.array([float(fair_over(o, u, method)) for o, u in batch])  # type: ignore[arg-type]
    np.testing.assert_array_max_ulp(whole, one_by_one, maxulp=4)
